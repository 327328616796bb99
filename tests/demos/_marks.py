"""Marks shared by the app tests (one list, so the files cannot drift apart)."""

from __future__ import annotations

import pytest

from tests.pipeline._tiny import GROUP

#: Gradio's queue uses pandas options that pandas 3 deprecates; not ours to fix.
GRADIO_WARNINGS = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
#: Tests on the tiny decoding bundle: one xdist worker (it is built once per session) and Gradio's warnings.
DECODING = [pytest.mark.xdist_group(GROUP), *GRADIO_WARNINGS]
