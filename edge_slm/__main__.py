"""`python -m edge_slm` and the `edge-slm` console script."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
