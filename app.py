"""Hugging Face Spaces entry point (a Space runs ``python app.py`` from the repository root).

The app itself is ``demos/app.py``; this file only starts it, listening on all interfaces as a Space requires.
"""

import os

# Passive OpenMP waiting (see toolkit/cli.py): a Space's CPU is small and shared. Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from demos.app import main

if __name__ == "__main__":
    raise SystemExit(main(["--host", "0.0.0.0"]))
