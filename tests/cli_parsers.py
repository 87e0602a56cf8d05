"""The parser of one `edge-slm` subcommand, for tests that read its flags and help."""

from __future__ import annotations

import argparse

from edge_slm.cli import build_parser


def subcommand(name: str) -> argparse.ArgumentParser:
    """`edge-slm NAME`'s own parser (its actions carry the flags, defaults and help)."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]
