"""The device side of serial flashing: receive a bundle, check it, install it A/B.

    agent = Agent(SlotStore("/var/lib/edge-slm/slots"), public_keys=[load_public(pem)])
    agent = Agent(SlotStore("/tmp/slots"), insecure_unsigned=True)   # development only
    serve_agent(open_port("/dev/ttyS0"), agent)

`Agent` is a state machine without port I/O (bytes in, bytes out), like
`firmware_tools.flash.FlashSender`. It appends in-order data to `incoming/<sha256>.part` (so
an interrupted transfer, even across a reboot, resumes from the file's size), buffers a
window of out-of-order frames, and on DONE checks the SHA-256 of the whole bundle, the
signature (by one of the trusted keys, before anything in the bundle is parsed;
`insecure_unsigned=True` must be asked for to skip it), the bundle format and the golden
self-test before it switches the active slot. Every failure keeps the old slot and is
reported in the STATUS frame. Every frame carries the sender's nonce: frames of another
transfer are ignored, and each answer carries the nonce it answers.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Optional, Tuple

from edge_slm.bundle import MAX_BUNDLE_BYTES, Bundle, BundleError, read_bundle
from edge_slm.daemon.serial_port import ByteStream
from edge_slm.errors import ConfigError
from edge_slm.signature import SignatureError, read_verified

from .serial_protocol import (DEFAULT_MAX_FRAME, DEFAULT_WINDOW, MAX_FRAME_LIMIT,
                              PROTOCOL_VERSION, STATUS_BAD_BUNDLE, STATUS_BAD_HASH,
                              STATUS_BAD_SIGNATURE, STATUS_BAD_VERSION, STATUS_BUSY,
                              STATUS_DOWNGRADE, STATUS_OK, STATUS_PROTOCOL,
                              STATUS_SELF_TEST_FAILED, STATUS_STORAGE, STATUS_TEXT, Ack, Data,
                              Done, FrameDecoder, Hello, HelloAck, Message, Nak, Status,
                              encode_frame)
from .signing import bundle_version
from .slots import SlotError, SlotStore

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

_LOGGER = logging.getLogger(__name__)

INCOMING = "incoming"
"""Sub-folder of the slots folder holding partial transfers."""
TAKEOVER_S = 5.0
"""Seconds without a frame from a transfer's sender after which a HELLO with another nonce
may take the transfer over (resume it, or start another); before, it is answered BUSY."""

SelfTest = Callable[[Path], None]
"""Checks an installed-but-inactive bundle file; raises (BundleError) to refuse it."""


def golden_self_test(path: Path) -> None:
    """The default self-test: load the bundle, which runs its golden cases
    (`IntentEngine.load`); BundleError when this runtime does not reproduce them."""
    from edge_slm.runtime.engine import IntentEngine

    IntentEngine.load(path)


class _PartBusy(Exception):
    """Another agent on the slots folder is receiving the same bundle."""


class _Transfer:
    """One transfer being received: its partial file, held open and flock()ed (so another
    agent on the folder neither deletes nor appends to it), and its sender's nonce."""

    def __init__(self, hello: Hello, nonce: bytes, part: Path, now: float) -> None:
        self.hello = hello
        self.nonce = nonce
        """The sender's nonce: only its DATA and DONE count."""
        self.heard = now
        """When a frame of this sender last arrived."""
        self.part = part
        self.fh = open(part, "ab")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise _PartBusy() from None
        self.received = self.fh.seek(0, os.SEEK_END)
        if self.received > hello.total:  # not ours after all: start again
            self.fh.truncate(0)
            self.received = 0
        self.pending: Dict[int, bytes] = {}  # out-of-order frames by offset
        self.nak_sent_for = -1

    def close(self) -> None:
        try:
            self.fh.close()  # releases the flock
        except OSError:  # bytes a full disk did not take: the file is closed all the same
            pass


class Agent:
    """The receiver's protocol state machine: `receive(bytes, now) -> bytes to write`."""

    def __init__(self, store: SlotStore, public_keys: Iterable[Ed25519PublicKey] = (),
                 self_test: SelfTest = golden_self_test, max_frame: int = DEFAULT_MAX_FRAME,
                 window: int = DEFAULT_WINDOW, insecure_unsigned: bool = False,
                 allow_downgrade: bool = False) -> None:
        if not 1 <= max_frame <= MAX_FRAME_LIMIT:
            raise ValueError(f"max_frame {max_frame}: must be 1..{MAX_FRAME_LIMIT}")
        self.public_keys = list(public_keys)
        """Trusted Ed25519 keys: a bundle none of them signed is refused."""
        if bool(self.public_keys) == insecure_unsigned:
            raise ConfigError("Agent: give trusted public keys (signed bundles only), or "
                              "insecure_unsigned=True (anyone who reaches the agent installs "
                              "anything), not both or neither")
        self.allow_downgrade = allow_downgrade
        """Install a signed bundle whose version is not above the active one's (rollback)."""
        self.store = store
        """The A/B slots written to."""
        self.self_test = self_test
        """Run on the new bundle (in a temporary file) before it becomes active."""
        self.max_frame = max_frame
        self.window = window
        self.incoming = store.root / INCOMING
        try:
            self.incoming.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SlotError(f"slots folder {store.root}: cannot write it "
                            f"({err.strerror or err})") from err
        self.completed = 0
        """Transfers finished (installed or refused) since start."""
        self.last_status: Optional[Status] = None
        """The STATUS of the last finished transfer."""
        self._decoder = FrameDecoder()
        self._seq = 0
        self._transfer: Optional[_Transfer] = None
        # the last finished transfer's status, by (transfer id, sender's nonce): that sender's
        # repeated DONE gets it again; another sender's transfer of the same bundle starts afresh
        self._finished: Dict[Tuple[bytes, bytes], Status] = {}
        self._greeted: Optional[Tuple[bytes, bytes]] = None  # a HELLO for the active bundle

    def _frame(self, msg: Message, nonce: bytes) -> bytes:
        self._seq = (self._seq + 1) & 0xFFFF
        return encode_frame(msg, self._seq, nonce)

    def receive(self, data: bytes, now: float = 0.0) -> bytes:
        """Handle received bytes; the bytes to write in answer (each answer carries the
        nonce of the frame it answers)."""
        out = bytearray()
        for _seq, nonce, msg in self._decoder.feed(data):
            if isinstance(msg, Hello):
                out += self._on_hello(msg, nonce, now)
            elif isinstance(msg, Data):
                out += self._on_data(msg, nonce, now)
            elif isinstance(msg, Done):
                out += self._on_done(msg, nonce)
        return bytes(out)

    def poll(self, now: float = 0.0) -> bytes:
        """The receiver has no timers (the sender drives every retry)."""
        return b""

    @property
    def progress(self) -> Optional[Tuple[int, int]]:
        """(bytes received, total) of the transfer in progress, or None."""
        t = self._transfer
        return (t.received, t.hello.total) if t is not None else None

    def next_deadline(self) -> float:
        """Never: see `poll`."""
        return float("inf")

    def close(self) -> None:
        """Close the partial file (its bytes stay, for a resume)."""
        if self._transfer is not None:
            self._transfer.close()
            self._transfer = None

    # -- messages ------------------------------------------------------------------------------

    def _on_hello(self, hello: Hello, nonce: bytes, now: float) -> bytes:
        if hello.version != PROTOCOL_VERSION:
            return self._frame(Status(STATUS_BAD_VERSION, f"this agent speaks version "
                                      f"{PROTOCOL_VERSION}, not {hello.version}"), nonce)
        if not 0 < hello.total <= MAX_BUNDLE_BYTES:
            return self._frame(Status(STATUS_BAD_BUNDLE, f"size {hello.total} is not that of "
                                      f"a bundle (at most {MAX_BUNDLE_BYTES})"), nonce)
        max_frame = min(self.max_frame, max(1, hello.max_frame))
        tid = hello.transfer_id
        if (tid, nonce) in self._finished or tid == self.store.active_sha256():
            # a repeat (DONE gets the same status), or the active bundle: nothing to send
            self._greeted = (tid, nonce) if (tid, nonce) not in self._finished else None
            return self._frame(HelloAck(PROTOCOL_VERSION, max_frame, self.window, hello.total,
                                        tid), nonce)
        current = self._transfer
        if current is not None and current.nonce != nonce and not _quiet(current, now):
            return self._frame(Status(STATUS_BUSY, "receiving another sender's transfer"),
                               nonce)
        if current is None or current.hello.transfer_id != tid:
            self.close()
            self._delete_other_parts(tid)  # one transfer at a time
            try:
                current = self._transfer = _Transfer(hello, nonce, self._part(tid), now)
            except _PartBusy:
                return self._frame(Status(STATUS_BUSY, "another agent is receiving this "
                                          "bundle"), nonce)
            except OSError as err:
                return self._frame(self._finish((tid, nonce), _refuse(STATUS_STORAGE, str(err))),
                                   nonce)
            if current.received:
                _LOGGER.info("resuming transfer at byte %d", current.received)
        current.nonce, current.heard, current.nak_sent_for = nonce, now, -1
        return self._frame(HelloAck(PROTOCOL_VERSION, max_frame, self.window, current.received,
                                    tid), nonce)

    def _part(self, transfer_id: bytes) -> Path:
        return self.incoming / f"{transfer_id.hex()}.part"

    def _delete_other_parts(self, keep: bytes) -> None:
        """Partial files of other transfers, unless another agent holds one open."""
        for old in self.incoming.glob("*.part"):
            if old.stem == keep.hex():
                continue
            try:
                with open(old, "rb") as fh:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    old.unlink()
            except OSError:  # in use by another agent (BlockingIOError), or gone already
                continue

    def _on_data(self, msg: Data, nonce: bytes, now: float) -> bytes:
        t = self._transfer
        if t is None or nonce != t.nonce or not msg.data or len(msg.data) > self.max_frame \
                or msg.offset + len(msg.data) > t.hello.total:
            return b""
        t.heard = now
        out = bytearray()
        if msg.offset == t.received:
            try:
                self._append(t, msg.data)
                while t.received in t.pending:
                    self._append(t, t.pending.pop(t.received))
                t.fh.flush()
            except OSError as err:  # a full disk: say so, free what the transfer took
                return self._frame(self._abandon(t, err), nonce)
            for stale in [o for o in t.pending if o < t.received]:
                del t.pending[stale]
            out += self._frame(Ack(t.received), nonce)
        elif msg.offset < t.received:
            out += self._frame(Ack(t.received), nonce)  # a duplicate: our ACK may be lost
        elif msg.offset < t.received + self.window * self.max_frame:
            t.pending[msg.offset] = msg.data
        if t.pending and t.received not in t.pending and t.nak_sent_for != t.received:
            t.nak_sent_for = t.received  # once per gap; the sender's timeout covers the rest
            out += self._frame(Nak(t.received), nonce)
        return bytes(out)

    @staticmethod
    def _append(t: _Transfer, data: bytes) -> None:
        t.fh.write(data)
        t.received += len(data)

    def _abandon(self, t: _Transfer, err: OSError) -> Status:
        """End a transfer that cannot be stored: delete its partial file, report STORAGE."""
        self.close()
        t.part.unlink(missing_ok=True)
        return self._finish((t.hello.transfer_id, t.nonce),
                            _refuse(STATUS_STORAGE, f"the transfer stopped at byte "
                                                    f"{t.received}: {err}"))

    def _finish(self, key: Tuple[bytes, bytes], status: Status) -> Status:
        self._finished = {key: status}
        self.completed += 1
        self.last_status = status
        return status

    def _on_done(self, done: Done, nonce: bytes) -> bytes:
        key = (done.transfer_id, nonce)
        cached = self._finished.get(key)
        if cached is not None:
            return self._frame(cached, nonce)
        if self._greeted == key:  # the active bundle itself was offered
            self._greeted = None
            name, digest = self.store.active(), self.store.active_sha256()
            if digest == done.transfer_id:
                return self._frame(self._finish(key, Status(
                    STATUS_OK, f"already active in slot {name}", digest)), nonce)
        t = self._transfer
        if t is None or t.nonce != nonce or t.hello.transfer_id != done.transfer_id \
                or t.received != done.total or done.total != t.hello.total:
            got = t.received if t is not None and t.nonce == nonce else 0
            return self._frame(Status(STATUS_PROTOCOL, f"DONE for {done.total} bytes, "
                                      f"holding {got} of this transfer"), nonce)
        try:
            data: Optional[bytes] = t.part.read_bytes()  # while ours is the part's flock
        except OSError as err:
            data, status = None, _refuse(STATUS_STORAGE, str(err))
        self.close()
        if data is not None:
            status = self._install(data, done.transfer_id)
        if status.code != STATUS_BUSY:  # busy: kept, so that sending again resumes at the end
            t.part.unlink(missing_ok=True)
        return self._frame(self._finish(key, status), nonce)

    def _install(self, data: bytes, transfer_id: bytes) -> Status:
        """Check and install the received bundle, holding the slots folder's lock throughout
        (another agent on the folder waits: checks and switch are one step)."""
        try:
            with self.store.lock():
                return self._check_and_install(data, transfer_id)
        except SlotError as err:
            return _refuse(STATUS_BUSY, str(err))
        except OSError as err:
            return _refuse(STATUS_STORAGE, str(err))

    def _check_and_install(self, data: bytes, transfer_id: bytes) -> Status:
        if hashlib.sha256(data).digest() != transfer_id:
            return _refuse(STATUS_BAD_HASH, "")
        try:  # with trusted keys, the signature is checked before anything is parsed
            bundle = (read_verified(data, self.public_keys) if self.public_keys
                      else read_bundle(data))
        except SignatureError as err:
            return _refuse(STATUS_BAD_SIGNATURE, str(err))
        except BundleError as err:
            return _refuse(STATUS_BAD_BUNDLE, str(err))
        if self.public_keys and not self.allow_downgrade:  # else insecure_unsigned
            rollback = self._rollback(bundle)
            if rollback is not None:
                return _refuse(STATUS_DOWNGRADE, rollback)
        try:
            slot = self.store.install(data, self.self_test)
        except BundleError as err:
            return _refuse(STATUS_SELF_TEST_FAILED, str(err))
        digest = self.store.active_sha256() or bytes(32)  # read back from the slot
        return Status(STATUS_OK, f"{bundle.model_id} active in slot {slot}", digest)

    def _rollback(self, bundle: Bundle) -> Optional[str]:
        """Why a signed bundle would be a rollback (its signed version is not above the
        active bundle's), or None. A damaged active slot has no version to protect."""
        try:
            new = bundle_version(bundle)
        except BundleError as err:
            return str(err)
        active = self.store.active_path()
        try:
            old = bundle_version(read_bundle(active)) if active is not None else None
        except (BundleError, OSError) as err:
            _LOGGER.warning("active slot unreadable, no version to compare with: %s", err)
            old = None
        if old is None or new > old:
            return None
        return (f"bundle version {new} is not newer than the active bundle's ({old}): sign "
                f"it with a higher --bundle-version, or give the agent --allow-downgrade")


def _quiet(t: _Transfer, now: float) -> bool:
    """Whether a transfer's sender has been silent long enough for another to take over."""
    return now - t.heard >= TAKEOVER_S


def _refuse(code: int, detail: str) -> Status:
    _LOGGER.warning("bundle refused: %s %s", STATUS_TEXT[code], detail)
    return Status(code, detail)


def serve_agent(port: ByteStream, agent: Agent, stop: Optional[threading.Event] = None,
                once: bool = False, clock: Callable[[], float] = time.monotonic) -> int:
    """Run `agent` on an open port until `stop` is set, the link drops (a socket closed), or,
    with `once`, a transfer finished; the number of transfers finished."""
    import serial

    from .flash import pump

    start = agent.completed
    try:
        while not (stop is not None and stop.is_set()):
            pump(port, agent, clock)
            if once and agent.completed > start:
                break
    except (serial.SerialException, OSError) as err:
        _LOGGER.info("link closed: %s", err)
    finally:
        agent.close()
    return agent.completed - start
