"""Command-line command families (one module each, registered by :mod:`toolkit.cli`)."""
