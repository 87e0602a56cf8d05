"""The A/B slots folder as the device reads it: which bundle is active, and whether that
changed (`edge-slm serve --slots DIR` follows it).

    DIR/a.slm, DIR/b.slm   the two slots
    DIR/active             "a" or "b": the slot in service
    DIR/.lock              flock()ed by whoever installs (firmware-tools' agents)

    path = active_bundle(DIR)                         # BundleError when none is active
    watcher = ActiveSlotWatcher(DIR, daemon.request_reload).start()

`firmware_tools.slots.SlotStore` writes the folder (a new bundle goes to the inactive slot,
then `active` is replaced in one rename); this module only reads it, so that edge_slm never
imports firmware_tools. Stdlib only.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Callable, Optional, Tuple, Union

from ..bundle import BundleError

_LOGGER = logging.getLogger(__name__)

SLOTS = ("a", "b")
"""The two slot names; `DIR/<name>.slm` holds each."""
ACTIVE = "active"
"""The file naming the active slot (its content is "a" or "b")."""
LOCK = ".lock"
"""The file an installer holds an exclusive flock() on for the whole install."""
POLL_S = 1.0
"""How often the watcher looks at the folder."""

Stamp = Optional[Tuple[str, int, int, int]]
"""What identifies the active bundle file: slot, inode, mtime (ns), size; None: none."""


def slot_path(root: Union[str, Path], name: str) -> Path:
    """The bundle file of slot `name` in the folder `root`."""
    if name not in SLOTS:
        raise ValueError(f"no slot {name!r} (slots: {', '.join(SLOTS)})")
    return Path(root) / f"{name}.slm"


def read_active(root: Union[str, Path]) -> Optional[str]:
    """The active slot's name, or None when none was ever installed (or `active` is
    unreadable: then neither slot is trusted)."""
    try:
        name = (Path(root) / ACTIVE).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name if name in SLOTS else None


def active_bundle(root: Union[str, Path]) -> Path:
    """The active slot's bundle file; BundleError when no slot is active."""
    name = read_active(root)
    if name is None:
        raise BundleError(f"{root}: no active slot (install a bundle with `firmware-tools "
                          "flash` or `firmware-tools ota` first)")
    return slot_path(root, name)


def stamp(root: Union[str, Path]) -> Stamp:
    """The active bundle file's identity: changes whenever another bundle becomes active."""
    name = read_active(root)
    if name is None:
        return None
    try:
        st = os.stat(slot_path(root, name))
    except OSError:
        return None
    return (name, st.st_ino, st.st_mtime_ns, st.st_size)


class ActiveSlotWatcher:
    """Calls `on_change` (from its own thread) whenever the active bundle changes: `active`
    names the other slot, or the slot's file was replaced."""

    def __init__(self, root: Union[str, Path], on_change: Callable[[], None],
                 poll_s: float = POLL_S) -> None:
        self.root = Path(root)
        """The slots folder."""
        self.on_change = on_change
        """Called once per change seen (e.g. a daemon's `request_reload`)."""
        self.poll_s = poll_s
        """Seconds between two looks."""
        self._last = stamp(self.root)
        self._stop = threading.Event()

    def check(self) -> bool:
        """Look once; True (after calling on_change) when the active bundle changed."""
        now = stamp(self.root)
        if now == self._last:
            return False
        _LOGGER.info("active slot changed: %s -> %s", self._last, now)
        self._last = now
        self.on_change()
        return True

    def start(self) -> "ActiveSlotWatcher":
        """Look every `poll_s` seconds in a daemon thread until stop()."""
        def run() -> None:
            while not self._stop.wait(self.poll_s):
                self.check()

        threading.Thread(target=run, name="active-slot-watcher", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop looking."""
        self._stop.set()
