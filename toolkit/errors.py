"""The toolkit's error type: one clear sentence saying what was wrong, where, and what to do."""

from __future__ import annotations


class ToolkitError(ValueError):
    """A user-facing error about bad input (a file, an argument, a configuration).

    The message is a complete sentence naming the file or argument at fault and what to do about it. The command
    line prints it on one line without a traceback; the Gradio app shows it as a message.
    """
