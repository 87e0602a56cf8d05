"""A/B model slots on the device: `DIR/a.slm`, `DIR/b.slm`, and `DIR/active` naming one.

`install(data, check)` holds the folder's lock (an exclusive `flock` on `DIR/.lock`, so two
agents on one folder, in any processes, take turns), writes `data` to a temporary file in
the folder (fsync), runs `check(path)` on it (the golden self-test by default) and only then
renames it over the inactive slot and switches `active` atomically (write `active.tmp`,
fsync, rename, fsync the folder). A refused bundle touches neither slot: the inactive one
stays the fallback, and the active model is never one that was not fully written and
checked. The layout is `edge_slm.daemon.active_slot`'s, which `edge-slm serve --slots` reads.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Optional, Tuple, Union

from edge_slm.daemon.active_slot import ACTIVE, LOCK, SLOTS, read_active, slot_path
from edge_slm.errors import EdgeSlmError

__all__ = ["ACTIVE", "LOCK", "SLOTS", "SlotError", "SlotStore", "write_durable"]

_LOGGER = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 60.0
"""Longest wait for another install (its self-test included) to release the folder."""
TEMP_PREFIX = ".install-"
"""Name prefix of the temporary file a bundle is written to before its checks."""


class SlotError(EdgeSlmError):
    """The slots folder cannot be used: not writable, or locked by another install."""


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

    def __init__(self, root: Union[str, Path], lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        self.root = Path(root)
        """The slots folder (created when missing)."""
        self.lock_timeout_s = lock_timeout_s
        """See LOCK_TIMEOUT_S."""
        try:  # creating the lock file also proves the folder writable, before any transfer
            self.root.mkdir(parents=True, exist_ok=True)
            open(self.root / LOCK, "a").close()
        except OSError as err:
            raise SlotError(f"slots folder {self.root}: cannot write it "
                            f"({err.strerror or err})") from err
        self._mutex = threading.RLock()
        self._held: Optional[IO[Any]] = None
        self._depth = 0
        self._digest: Optional[Tuple[Tuple[Any, ...], bytes]] = None

    def active(self) -> Optional[str]:
        """The active slot's name, or None when none was ever installed (or `active` is
        unreadable: then neither slot is trusted)."""
        return read_active(self.root)

    def active_path(self) -> Optional[Path]:
        """The active bundle's path, or None."""
        name = self.active()
        return None if name is None else self.path(name)

    def active_sha256(self) -> Optional[bytes]:
        """SHA-256 of the active bundle file as it is on disk (read again only when the file
        changed), or None when no slot is active."""
        path = self.active_path()
        if path is None:
            return None
        try:
            st = path.stat()
            key = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
            if self._digest is None or self._digest[0] != key:
                digest = hashlib.sha256()
                with open(path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
                self._digest = (key, digest.digest())
        except OSError:
            return None
        return self._digest[1]

    def inactive(self) -> str:
        """The slot a new bundle goes to."""
        return "b" if self.active() == "a" else "a"

    def path(self, name: str) -> Path:
        """The bundle file of slot `name`."""
        return slot_path(self.root, name)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's lock: an exclusive flock on `DIR/.lock`, which every SlotStore
        in every process takes for a whole install (reentrant within this object).
        SlotError when it is not free within `lock_timeout_s`."""
        deadline = time.monotonic() + self.lock_timeout_s
        if not self._mutex.acquire(timeout=self.lock_timeout_s):
            raise SlotError(f"slots folder {self.root}: locked by another install")
        try:
            if self._depth == 0:
                self._held = self._flock(deadline)
                self._remove_leftovers()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._held is not None:
                    self._held.close()  # closing the file releases the flock
                    self._held = None
        finally:
            self._mutex.release()

    def _flock(self, deadline: float) -> IO[Any]:
        try:
            fh = open(self.root / LOCK, "a")
        except OSError as err:
            raise SlotError(f"slots folder {self.root}: cannot open its lock file "
                            f"({err.strerror or err})") from err
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fh
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.close()
                    raise SlotError(f"slots folder {self.root}: locked by another install "
                                    f"for over {self.lock_timeout_s:g} s") from None
                time.sleep(0.05)

    def _remove_leftovers(self) -> None:
        """Temporary files of an install that died (we hold the lock: none is in use)."""
        for leftover in [*self.root.glob(TEMP_PREFIX + "*"), self.root / (ACTIVE + ".tmp")]:
            leftover.unlink(missing_ok=True)

    def install(self, data: bytes, check: Callable[[Path], None]) -> str:
        """Holding the lock, write `data` to a temporary file, run `check(path)` on it (which
        raises to refuse it), rename it over the inactive slot and make that slot active;
        the new active slot's name. On an exception neither slot changed (or, if only the
        switch failed, the old slot is still active)."""
        with self.lock():
            name = self.inactive()
            tmp = self.root / f"{TEMP_PREFIX}{secrets.token_hex(8)}.slm"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                check(tmp)
                os.replace(tmp, self.path(name))
                _fsync_dir(self.root)
                write_durable(self.root / ACTIVE, name.encode())
            finally:
                tmp.unlink(missing_ok=True)
        _LOGGER.info("slot %s active (%d bytes)", name, len(data))
        return name
