"""``python -m pardo``: the ``pardo`` command (``python -m pardo demo`` runs the demo)."""

from __future__ import annotations

import sys

from pardo._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
