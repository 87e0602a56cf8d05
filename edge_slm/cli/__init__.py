"""The `edge-slm` command line: one subcommand per verb, each in its own module.

Results go to stdout, progress and diagnostics to stderr; any `EdgeSlmError` exits with
status 2 and its message, never a traceback (unless --debug). Any other exception is a bug
and shows its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from ..errors import EdgeSlmError
from . import convert as convert_cmd
from . import corpus as corpus_cmd
from . import demo as demo_cmd
from . import eval as eval_cmd
from . import home as home_cmd
from . import models as models_cmd
from . import parse as parse_cmd
from . import serve as serve_cmd
from . import status as status_cmd
from . import train as train_cmd

_LOGGER = logging.getLogger(__name__)

_COMMANDS = (demo_cmd, corpus_cmd, train_cmd, convert_cmd, parse_cmd, eval_cmd, models_cmd,
             serve_cmd, status_cmd, home_cmd)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="edge-slm", description="Offline smart-home language understanding.")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        module.add_parser(sub)
    return parser


def setup_logging(debug: bool) -> None:
    """Log to stderr; DEBUG with --debug, else WARNING; passwords masked in every record."""
    from ..daemon.redact import install

    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    install(logging.getLogger())


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.debug)
    try:
        return int(args.run(args) or 0)
    except EdgeSlmError as err:  # the only error channel: anything else is a bug
        if args.debug:
            raise
        from ..daemon.redact import redact

        print(f"edge-slm {args.command}: error: {redact(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`edge-slm parse ... | head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
