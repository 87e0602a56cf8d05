"""`edge-slm parse`: text -> intent and slots with the shipped (or a given) bundle.

    edge-slm parse "turn off the kitchen lights"
    edge-slm parse --home my_home.yaml --area Kitchen "turn on the lights in here"
    edge-slm parse --jsonl < queries.jsonl > answers.jsonl

With --jsonl every input line ({"text": ..., "context": {"area": ...}}, the context optional)
gives exactly one output line, in order: the parse, or {"error": ..., "line": n} for an empty,
malformed or unparseable line. With --home, your home is the only one names resolve against.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Optional, TextIO, Union

from ..errors import ConfigError

if TYPE_CHECKING:  # imported where used: `edge-slm --help` stays quick
    from ..bundle import Bundle
    from ..home import Inventory
    from ..runtime.engine import IntentEngine


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand."""
    p = sub.add_parser("parse", help="parse a command (or JSON lines on stdin)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", nargs="*", help="the command to parse")
    p.add_argument("--jsonl", action="store_true",
                   help='read {"text": ...} lines on stdin, write one JSON object per line')
    p.add_argument("--bundle", type=Path, help="model bundle (default: the shipped int8 one)")
    p.add_argument("--home", type=Path,
                   help="your home (YAML or JSON: entities, areas, floors): the only names "
                        "answers are given in (default: the bundle's example home)")
    p.add_argument("--area", help="the area the command was heard in (a satellite's room), "
                                  'for commands such as "turn on the lights in here"')
    p.set_defaults(run=run)


def load_engine(bundle: Union[str, Path, Bundle, None],
                home: Union[Inventory, str, Path, None] = None) -> IntentEngine:
    """The engine for a --bundle/--home pair (shared by parse, eval and serve)."""
    from ..runtime.engine import IntentEngine

    return IntentEngine.load(bundle, home=home)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    if args.jsonl and args.text:
        raise ConfigError("give a text or --jsonl, not both")
    if not args.jsonl and not args.text:
        raise ConfigError('nothing to parse: edge-slm parse "turn on the light" (or --jsonl)')
    if args.area is not None and not args.area.strip():
        raise ConfigError("--area: give the name of an area")
    engine = load_engine(args.bundle, args.home)
    if not args.jsonl:
        result = engine.parse(" ".join(args.text), area=args.area)  # InputError: an EdgeSlmError
        print(json.dumps(result.to_dict(), indent=1, ensure_ascii=False))
        return 0
    return serve_jsonl(engine, sys.stdin.buffer, sys.stdout, area=args.area)


def serve_jsonl(engine: IntentEngine, inp: BinaryIO, out: TextIO,
                area: Optional[str] = None) -> int:
    """Answer every line of `inp` on `out`, in order, one line each (flushed, so another
    program can talk to us line by line), with `edge_slm.runtime.lines.answer_line`."""
    from ..runtime.lines import answer_line, to_line

    for n, line in enumerate(inp, 1):
        out.write(to_line(answer_line(engine, line, n, area)))
        out.flush()
    return 0
