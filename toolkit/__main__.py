"""``python -m toolkit``: the command line."""

from .cli import main

raise SystemExit(main())
