"""A/B model slots on the device: `DIR/a.slm`, `DIR/b.slm`, and `DIR/active` naming one.

`install(data, check)` writes the inactive slot, runs `check(path)` on it (the golden
self-test by default) and only then switches `active` atomically (write `active.tmp`, fsync,
rename, fsync the folder). On any failure the old slot stays active: the active model is never
one that was not fully written and checked.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Optional, Union

_LOGGER = logging.getLogger(__name__)

SLOTS = ("a", "b")
"""The two slot names; `DIR/<name>.slm` holds each."""
ACTIVE = "active"
"""The file naming the active slot (its content is "a" or "b")."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file, fsync it, and rename it in place."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class SlotStore:
    """The A/B slots in one folder."""

    def __init__(self, root: Union[str, Path]) -> None:
        self.root = Path(root)
        """The slots folder (created when missing)."""
        self.root.mkdir(parents=True, exist_ok=True)

    def active(self) -> Optional[str]:
        """The active slot's name, or None when none was ever installed (or `active` is
        unreadable: then neither slot is trusted)."""
        try:
            name = (self.root / ACTIVE).read_text().strip()
        except OSError:
            return None
        return name if name in SLOTS else None

    def active_path(self) -> Optional[Path]:
        """The active bundle's path, or None."""
        name = self.active()
        return None if name is None else self.path(name)

    def inactive(self) -> str:
        """The slot a new bundle goes to."""
        return "b" if self.active() == "a" else "a"

    def path(self, name: str) -> Path:
        """The bundle file of slot `name`."""
        if name not in SLOTS:
            raise ValueError(f"no slot {name!r} (slots: {', '.join(SLOTS)})")
        return self.root / f"{name}.slm"

    def install(self, data: bytes, check: Callable[[Path], None]) -> str:
        """Write `data` to the inactive slot, run `check(path)` (which raises to refuse it),
        then make that slot active; the new active slot's name. On an exception the active
        slot is unchanged."""
        name = self.inactive()
        path = self.path(name)
        write_durable(path, data)
        check(path)
        write_durable(self.root / ACTIVE, name.encode())
        _LOGGER.info("slot %s active (%d bytes)", name, len(data))
        return name
