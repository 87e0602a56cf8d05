"""The device side of serial flashing: receive a bundle, check it, install it A/B.

    agent = Agent(SlotStore("/var/lib/edge-slm/slots"), public_keys=[load_public(pem)])
    serve_agent(open_port("/dev/ttyS0"), agent)

`Agent` is a state machine without port I/O (bytes in, bytes out), like
`firmware_tools.flash.FlashSender`. It appends in-order data to `incoming/<sha256>.part` (so
an interrupted transfer, even across a reboot, resumes from the file's size), buffers a
window of out-of-order frames, and on DONE checks the SHA-256 of the whole bundle, the bundle
format, the signature (when trusted keys are configured) and the golden self-test before it
switches the active slot. Every failure keeps the old slot and is reported in the STATUS frame.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from edge_slm.bundle import MAX_BUNDLE_BYTES, BundleError, read_bundle
from edge_slm.signature import verify_bundle

from .serial_protocol import (DEFAULT_MAX_FRAME, DEFAULT_WINDOW, MAX_FRAME_LIMIT,
                              PROTOCOL_VERSION, STATUS_BAD_BUNDLE, STATUS_BAD_HASH,
                              STATUS_BAD_SIGNATURE, STATUS_BAD_VERSION, STATUS_BUSY, STATUS_OK,
                              STATUS_PROTOCOL, STATUS_SELF_TEST_FAILED, STATUS_STORAGE,
                              STATUS_TEXT, Ack, Data, Done, FrameDecoder, Hello, HelloAck,
                              Message, Nak, Status, encode_frame)
from .slots import SlotError, SlotStore

_LOGGER = logging.getLogger(__name__)

INCOMING = "incoming"
"""Sub-folder of the slots folder holding partial transfers."""

SelfTest = Callable[[Path], None]
"""Checks an installed-but-inactive bundle file; raises (BundleError) to refuse it."""


def golden_self_test(path: Path) -> None:
    """The default self-test: load the bundle, which runs its golden cases
    (`IntentEngine.load`); BundleError when this runtime does not reproduce them."""
    from edge_slm.runtime.engine import IntentEngine

    IntentEngine.load(path)


class _Transfer:
    """One transfer being received."""

    def __init__(self, hello: Hello, part: Path) -> None:
        self.hello = hello
        self.part = part
        self.received = part.stat().st_size if part.exists() else 0
        if self.received > hello.total:  # not ours after all: start again
            part.unlink()
            self.received = 0
        self.fh = open(part, "ab")
        self.pending: Dict[int, bytes] = {}  # out-of-order frames by offset
        self.nak_sent_for = -1

    def close(self) -> None:
        self.fh.close()


class Agent:
    """The receiver's protocol state machine: `receive(bytes, now) -> bytes to write`."""

    def __init__(self, store: SlotStore, public_keys: Iterable[object] = (),
                 self_test: SelfTest = golden_self_test, max_frame: int = DEFAULT_MAX_FRAME,
                 window: int = DEFAULT_WINDOW) -> None:
        if not 1 <= max_frame <= MAX_FRAME_LIMIT:
            raise ValueError(f"max_frame {max_frame}: must be 1..{MAX_FRAME_LIMIT}")
        self.store = store
        """The A/B slots written to."""
        self.public_keys = list(public_keys)
        """Trusted Ed25519 keys; when any, unsigned or badly signed bundles are refused."""
        self.self_test = self_test
        """Run on the new slot before it becomes active."""
        self.max_frame = max_frame
        self.window = window
        self.incoming = store.root / INCOMING
        self.incoming.mkdir(parents=True, exist_ok=True)
        self.completed = 0
        """Transfers finished (installed or refused) since start."""
        self.last_status: Optional[Status] = None
        """The STATUS of the last finished transfer."""
        self._decoder = FrameDecoder()
        self._seq = 0
        self._transfer: Optional[_Transfer] = None
        self._finished: Dict[bytes, Status] = {}  # transfer id -> its final status (last one)

    def _frame(self, msg: Message) -> bytes:
        self._seq = (self._seq + 1) & 0xFFFF
        return encode_frame(msg, self._seq)

    def receive(self, data: bytes, now: float = 0.0) -> bytes:
        """Handle received bytes; the bytes to write in answer."""
        out = bytearray()
        for _seq, msg in self._decoder.feed(data):
            if isinstance(msg, Hello):
                out += self._on_hello(msg)
            elif isinstance(msg, Data):
                out += self._on_data(msg)
            elif isinstance(msg, Done):
                out += self._on_done(msg)
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

    def _on_hello(self, hello: Hello) -> bytes:
        if hello.version != PROTOCOL_VERSION:
            return self._frame(Status(STATUS_BAD_VERSION, f"this agent speaks version "
                                      f"{PROTOCOL_VERSION}, not {hello.version}"))
        if not 0 < hello.total <= MAX_BUNDLE_BYTES:
            return self._frame(Status(STATUS_BAD_BUNDLE, f"size {hello.total} is not that of "
                                      f"a bundle (at most {MAX_BUNDLE_BYTES})"))
        max_frame = min(self.max_frame, max(1, hello.max_frame))
        if hello.transfer_id in self._finished:  # a repeat: answer DONE with the same status
            return self._frame(HelloAck(PROTOCOL_VERSION, max_frame, self.window, hello.total,
                                        hello.transfer_id))
        current = self._transfer
        if current is None or current.hello.transfer_id != hello.transfer_id:
            self.close()
            for old in self.incoming.glob("*.part"):  # one transfer at a time
                if old.stem != hello.transfer_id.hex():
                    old.unlink()
            current = self._transfer = _Transfer(hello, self._part(hello.transfer_id))
            if current.received:
                _LOGGER.info("resuming transfer at byte %d", current.received)
        return self._frame(HelloAck(PROTOCOL_VERSION, max_frame, self.window, current.received,
                                    hello.transfer_id))

    def _part(self, transfer_id: bytes) -> Path:
        return self.incoming / f"{transfer_id.hex()}.part"

    def _on_data(self, msg: Data) -> bytes:
        t = self._transfer
        if t is None or not msg.data or len(msg.data) > self.max_frame \
                or msg.offset + len(msg.data) > t.hello.total:
            return b""
        out = bytearray()
        if msg.offset == t.received:
            self._append(t, msg.data)
            while t.received in t.pending:
                self._append(t, t.pending.pop(t.received))
            for stale in [o for o in t.pending if o < t.received]:
                del t.pending[stale]
            t.fh.flush()
            out += self._frame(Ack(t.received))
        elif msg.offset < t.received:
            out += self._frame(Ack(t.received))  # a duplicate: our ACK may have been lost
        elif msg.offset < t.received + self.window * self.max_frame:
            t.pending[msg.offset] = msg.data
        if t.pending and t.received not in t.pending and t.nak_sent_for != t.received:
            t.nak_sent_for = t.received  # once per gap; the sender's timeout covers the rest
            out += self._frame(Nak(t.received))
        return bytes(out)

    @staticmethod
    def _append(t: _Transfer, data: bytes) -> None:
        t.fh.write(data)
        t.received += len(data)

    def _on_done(self, done: Done) -> bytes:
        cached = self._finished.get(done.transfer_id)
        if cached is not None:
            return self._frame(cached)
        t = self._transfer
        if t is None or t.hello.transfer_id != done.transfer_id or t.received != done.total \
                or done.total != t.hello.total:
            got = t.received if t is not None else 0
            return self._frame(Status(STATUS_PROTOCOL, f"DONE for {done.total} bytes, "
                                      f"holding {got} of this transfer"))
        self.close()
        status = self._install(t.part, done.transfer_id)
        t.part.unlink(missing_ok=True)
        self._finished = {done.transfer_id: status}
        self.completed += 1
        self.last_status = status
        return self._frame(status)

    def _install(self, part: Path, transfer_id: bytes) -> Status:
        """Check and install the received bundle, holding the slots folder's lock throughout
        (another agent on the folder waits: checks and switch are one step)."""
        try:
            with self.store.lock():
                return self._check_and_install(part.read_bytes(), transfer_id)
        except SlotError as err:
            return _refuse(STATUS_BUSY, str(err))
        except OSError as err:
            return _refuse(STATUS_STORAGE, str(err))

    def _check_and_install(self, data: bytes, transfer_id: bytes) -> Status:
        if hashlib.sha256(data).digest() != transfer_id:
            return _refuse(STATUS_BAD_HASH, "")
        try:
            bundle = read_bundle(data)
        except BundleError as err:
            return _refuse(STATUS_BAD_BUNDLE, str(err))
        if self.public_keys:
            try:
                verify_bundle(bundle, self.public_keys)
            except BundleError as err:
                return _refuse(STATUS_BAD_SIGNATURE, str(err))
        try:
            slot = self.store.install(data, self.self_test)
        except BundleError as err:
            return _refuse(STATUS_SELF_TEST_FAILED, str(err))
        return Status(STATUS_OK, f"{bundle.model_id} active in slot {slot}")


def _refuse(code: int, detail: str) -> Status:
    _LOGGER.warning("bundle refused: %s %s", STATUS_TEXT[code], detail)
    return Status(code, detail)


def serve_agent(port: Any, agent: Agent, stop: Optional[threading.Event] = None,
                once: bool = False, clock: Callable[[], float] = time.monotonic,
                tick: Optional[Callable[[], None]] = None) -> int:
    """Run `agent` on an open port until `stop` is set, the link drops (a socket closed), or,
    with `once`, a transfer finished; the number of transfers finished. `tick` is called
    after every turn of the loop (at least once per read timeout), e.g. to report progress."""
    import serial

    from .flash import pump

    start = agent.completed
    try:
        while not (stop is not None and stop.is_set()):
            pump(port, agent, clock)
            if tick is not None:
                tick()
            if once and agent.completed > start:
                break
    except (serial.SerialException, OSError) as err:
        _LOGGER.info("link closed: %s", err)
    finally:
        agent.close()
    return agent.completed - start
