"""Flags that several commands share: one name per concept across `edge-slm` and
`firmware-tools`.

A concept that once had two spellings keeps the old one as a hidden alias, so scripts written
for it keep working while --help shows a single name:

    --trusted-key PUB.pem   (was --pubkey in verify, serial-agent, ota-agent)
    --site-id ID            (was --site in ota and ota-agent)
    --home FILE             (was --inventory in corpus)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_renamed_flag(parser: argparse.ArgumentParser, flag: str, old_flag: str,
                     **kwargs: Any) -> argparse.Action:
    """Add `flag` (argparse's `kwargs`) with its former spelling `old_flag` as an alias: one
    argument (same destination, action, `required`), but --help and error messages show
    `flag` only."""
    action = parser.add_argument(flag, old_flag, **kwargs)
    # The parser looks option strings up in its own table, where both stay; help and usage
    # print the action's list.
    action.option_strings.remove(old_flag)
    return action


def add_trusted_key_arg(parser: argparse.ArgumentParser, help: str,
                        required: bool = False) -> argparse.Action:
    """`--trusted-key PUB.pem`, repeatable (the old `--pubkey` still works): a list of paths,
    empty when none is given."""
    return add_renamed_flag(parser, "--trusted-key", "--pubkey", type=Path, action="append",
                            default=None if required else [], required=required,
                            metavar="PUB.pem", help=help)


def add_site_id_arg(parser: argparse.ArgumentParser, help: str) -> argparse.Action:
    """`--site-id ID`, required (the old `--site` still works)."""
    return add_renamed_flag(parser, "--site-id", "--site", required=True, metavar="ID",
                            help=help)
