"""Gradio apps built on the toolkit (thin: every handler calls into ``toolkit``). See ``demos/README.md``."""
