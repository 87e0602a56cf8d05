"""The flashing sender: push a bundle to a device's serial agent, resuming where it stopped.

    result = flash_bundle("/dev/ttyUSB0", Path("model.slm").read_bytes(), baud=115200)

`FlashSender` is the protocol as a state machine with no I/O (bytes in, bytes out, the time
passed in), so a simulated link can drive it with a virtual clock; `flash_bundle` is the thin
loop that runs it on any pyserial URL (`/dev/ttyUSB0`, `loop://`, `socket://host:port`,
`rfc2217://...`) or serial-like object. docs/serial-protocol.md describes the protocol.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Dict, List, Optional, Protocol, Union

from edge_slm.daemon import serial_port
from edge_slm.daemon.serial_port import ByteStream, SerialLike

from .serial_protocol import (DEFAULT_MAX_FRAME, DEFAULT_WINDOW, MAX_FRAME_LIMIT,
                              NONCE_BYTES, PROTOCOL_VERSION, STATUS_BUSY, STATUS_OK, Ack, Data,
                              DeviceError, Done, FlashError, FlashTimeout, FrameDecoder, Hello,
                              HelloAck, Message, Nak, Status, encode_frame)

_LOGGER = logging.getLogger(__name__)

ACK_TIMEOUT_S = 0.5
"""Seconds without progress (beyond the line time of a full window) before the sender
re-sends every unacknowledged frame."""
HANDSHAKE_TIMEOUT_S = 1.0
"""Seconds to wait for HELLO_ACK before sending HELLO again."""
STATUS_TIMEOUT_S = 120.0
"""Seconds to wait for the final STATUS after DONE: the device checks and self-tests."""
MAX_RETRIES = 8
"""Consecutive timeouts without progress before the sender gives up (FlashTimeout)."""
READ_TICK_S = 0.02
"""Read timeout of the I/O loop: how often it wakes to check its own timers."""
BITS_PER_BYTE = 10
"""Line time of one byte on a UART (start bit, 8 data bits, stop bit)."""

Progress = Callable[[int, int], None]
"""Called with (bytes acknowledged, total) whenever the acknowledged offset moves."""


@dataclass(frozen=True)
class FlashConfig:
    """How the sender behaves; defaults suit a 115,200-baud UART."""

    max_frame: int = DEFAULT_MAX_FRAME
    """Largest DATA payload to propose (the receiver may lower it)."""
    window: int = DEFAULT_WINDOW
    """Unacknowledged frames in flight (the receiver may lower it)."""
    ack_timeout_s: float = ACK_TIMEOUT_S
    """See ACK_TIMEOUT_S."""
    handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S
    """See HANDSHAKE_TIMEOUT_S."""
    status_timeout_s: float = STATUS_TIMEOUT_S
    """See STATUS_TIMEOUT_S."""
    max_retries: int = MAX_RETRIES
    """See MAX_RETRIES."""
    baud: Optional[int] = None
    """Line rate in baud, to allow for the time a full window takes on the wire (None: a
    link without a line rate, e.g. TCP)."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_frame <= MAX_FRAME_LIMIT:
            raise ValueError(f"max_frame {self.max_frame}: must be 1..{MAX_FRAME_LIMIT}")
        if not 1 <= self.window <= 255:
            raise ValueError(f"window {self.window}: must be 1..255")
        if self.max_retries < 1:
            raise ValueError(f"max_retries {self.max_retries}: must be at least 1")


@dataclass(frozen=True)
class FlashResult:
    """What a completed flash reports."""

    total: int
    """Bundle size in bytes."""
    resumed_from: int
    """Offset the receiver already held (0 for a fresh transfer)."""
    frames_sent: int
    """DATA frames written, retransmissions included."""
    retransmits: int
    """DATA frames written again (after a NAK or a timeout)."""
    dropped: int
    """Damaged frames received and dropped."""
    detail: str
    """The receiver's final status message."""


class _State(Enum):
    HANDSHAKE = "handshake"
    SENDING = "sending"
    FINISHING = "finishing"
    DONE = "done"
    FAILED = "failed"


class FlashSender:
    """The sender's protocol state machine: `start`, then `receive`/`poll` until `finished`;
    every call returns the bytes to write."""

    def __init__(self, bundle: bytes, config: FlashConfig = FlashConfig(),
                 progress: Optional[Progress] = None, nonce: Optional[bytes] = None) -> None:
        if not bundle:
            raise ValueError("nothing to flash: the bundle is empty")
        self.bundle = bytes(bundle)
        self.config = config
        self.transfer_id = hashlib.sha256(self.bundle).digest()
        """SHA-256 of the bundle: names the transfer on the receiver."""
        self.nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
        """This transfer's random nonce: on every frame; answers without it are ignored."""
        self.foreign = 0
        """Intact frames ignored because they carried another nonce (not this transfer's)."""
        self._busy: Optional[str] = None  # why the device said it was busy, while it does
        self.error: Optional[FlashError] = None
        """Why the transfer failed, once it has."""
        self.result: Optional[FlashResult] = None
        """The outcome, once it succeeded."""
        self._progress = progress
        self._decoder = FrameDecoder()
        self._state = _State.HANDSHAKE
        self._seq = 0
        self._chunk = config.max_frame
        self._window = config.window
        self._base = self._next = self._resumed = 0
        self._outstanding: Dict[int, int] = {}  # offset -> length, unacknowledged
        self._deadline = 0.0
        self._retries = 0
        self._frames = self._retransmits = 0

    @property
    def finished(self) -> bool:
        """Whether the transfer ended (see `result` and `error`)."""
        return self._state in (_State.DONE, _State.FAILED)

    @property
    def acknowledged(self) -> int:
        """Bytes the receiver has confirmed."""
        return self._base

    def _frame(self, msg: Message) -> bytes:
        self._seq = (self._seq + 1) & 0xFFFF
        return encode_frame(msg, self._seq, self.nonce)

    def _line_time(self, nbytes: int) -> float:
        baud = self.config.baud
        return nbytes * BITS_PER_BYTE / baud if baud else 0.0

    def _ack_timeout(self) -> float:
        return self.config.ack_timeout_s + self._line_time(self._window * (self._chunk + 32))

    def _hello(self, now: float) -> bytes:
        self._deadline = now + self.config.handshake_timeout_s
        return self._frame(Hello(PROTOCOL_VERSION, self.config.max_frame, len(self.bundle),
                                 self.transfer_id))

    def _fail(self, error: FlashError) -> bytes:
        self._state, self.error = _State.FAILED, error
        return b""

    def start(self, now: float) -> bytes:
        """The opening HELLO."""
        return self._hello(now)

    def _data(self, offset: int) -> bytes:
        self._frames += 1
        length = self._outstanding[offset]
        return self._frame(Data(offset, self.bundle[offset:offset + length]))

    def _fill_window(self, now: float) -> bytes:
        out = bytearray()
        total = len(self.bundle)
        while self._next < total and self._next - self._base < self._window * self._chunk:
            length = min(self._chunk, total - self._next)
            self._outstanding[self._next] = length
            out += self._data(self._next)
            self._next += length
        if self._base == total and self._state is _State.SENDING:
            self._state = _State.FINISHING
            self._deadline = now + self.config.status_timeout_s
            self._retries = 0
            out += self._frame(Done(total, self.transfer_id))
        return bytes(out)

    def receive(self, data: bytes, now: float) -> bytes:
        """Handle received bytes; the bytes to write in answer."""
        out = bytearray()
        for _seq, nonce, msg in self._decoder.feed(data):
            if self.finished:
                break
            if nonce != self.nonce:  # an answer to someone else, a replay, a stranger
                self.foreign += 1
                continue
            out += self._handle(msg, now)
        return bytes(out)

    def _handle(self, msg: Message, now: float) -> bytes:
        if isinstance(msg, Status):
            if msg.code == STATUS_BUSY and self._state is not _State.FINISHING:
                if self._state is _State.HANDSHAKE:  # another sender's transfer: keep asking
                    self._busy = msg.detail
                return b""  # (while sending: a late answer to a repeated HELLO)
            if msg.code != STATUS_OK:
                return self._fail(DeviceError(msg.code, msg.detail))
            if self._state is not _State.FINISHING:
                return b""
            if msg.sha256 != self.transfer_id:  # "installed", but not what was sent
                return self._fail(FlashError(
                    f"the device reported success, but the bundle it holds has SHA-256 "
                    f"{msg.sha256.hex()[:16]}..., not the {self.transfer_id.hex()[:16]}... "
                    f"sent: {msg.detail}"))
            self._state = _State.DONE
            self.result = FlashResult(len(self.bundle), self._resumed, self._frames,
                                      self._retransmits, self._decoder.dropped, msg.detail)
            return b""
        if isinstance(msg, HelloAck) and self._state is _State.HANDSHAKE:
            return self._on_hello_ack(msg, now)
        if self._state is not _State.SENDING:
            return b""  # stale ACK/NAK, or a duplicated HELLO_ACK
        if isinstance(msg, Ack) and self._base < msg.offset <= self._next:
            for offset in [o for o in self._outstanding if o < msg.offset]:
                del self._outstanding[offset]
            self._base = msg.offset
            self._retries = 0
            self._deadline = now + self._ack_timeout()
            if self._progress is not None:
                self._progress(self._base, len(self.bundle))
            return self._fill_window(now)
        if isinstance(msg, Nak) and msg.offset in self._outstanding:
            self._retransmits += 1
            return self._data(msg.offset)
        return b""

    def _on_hello_ack(self, ack: HelloAck, now: float) -> bytes:
        if ack.transfer_id != self.transfer_id:
            return b""  # an answer to an earlier transfer
        if ack.version != PROTOCOL_VERSION:
            return self._fail(FlashError(f"device speaks protocol version {ack.version}, "
                                         f"this sender {PROTOCOL_VERSION}"))
        if not 0 <= ack.resume_offset <= len(self.bundle) or ack.max_frame < 1 \
                or ack.window < 1:
            return self._fail(FlashError(f"device handshake makes no sense: {ack}"))
        self._chunk = min(self.config.max_frame, ack.max_frame)
        self._window = min(self.config.window, ack.window)
        self._base = self._next = self._resumed = ack.resume_offset
        if self._resumed:
            _LOGGER.info("resuming at byte %d of %d", self._resumed, len(self.bundle))
            if self._progress is not None:
                self._progress(self._base, len(self.bundle))
        self._state, self._retries = _State.SENDING, 0
        self._deadline = now + self._ack_timeout()
        return self._fill_window(now)

    def poll(self, now: float) -> bytes:
        """Handle timeouts (re-send, or give up); the bytes to write."""
        if self.finished or now < self._deadline:
            return b""
        self._retries += 1
        if self._retries > self.config.max_retries:
            what = {_State.HANDSHAKE: f"device busy ({self._busy})" if self._busy else
                    "no answer to the handshake",
                    _State.SENDING: f"no acknowledgement past byte {self._base}",
                    _State.FINISHING: "no final status from the device"}[self._state]
            return self._fail(FlashTimeout(f"{what} after {self.config.max_retries} retries"))
        _LOGGER.debug("timeout in %s (retry %d)", self._state.value, self._retries)
        if self._state is _State.HANDSHAKE:
            return self._hello(now)
        if self._state is _State.FINISHING:
            self._deadline = now + self.config.status_timeout_s / self.config.max_retries
            return self._frame(Done(len(self.bundle), self.transfer_id))
        self._deadline = now + self._ack_timeout()
        out = bytearray()
        for offset in sorted(self._outstanding):  # go back: re-send the whole window
            self._retransmits += 1
            out += self._data(offset)
        return bytes(out)

    @property
    def next_deadline(self) -> float:
        """When `poll` next has something to do (for a simulated clock)."""
        return float("inf") if self.finished else self._deadline


def open_port(port: Union[str, SerialLike], baud: Optional[int] = None,
              timeout: float = READ_TICK_S) -> SerialLike:
    """A pyserial port for a URL (any `serial_for_url` URL), or the serial-like object itself;
    its read timeout is set to `timeout` so the I/O loops wake to run their timers. FlashError
    when it cannot be opened (edge_slm.daemon.serial_port opens it)."""
    try:
        return serial_port.open_port(port, baud, timeout)
    except serial_port.SerialPortError as err:
        raise FlashError(str(err)) from err


class Machine(Protocol):
    """A protocol state machine an I/O loop drives: a FlashSender or an Agent."""

    def receive(self, data: bytes, now: float) -> bytes: ...

    def poll(self, now: float) -> bytes: ...


def pump(port: ByteStream, machine: Machine, clock: Callable[[], float]) -> None:
    """One turn of an I/O loop: read what arrived (waiting up to the port's timeout), feed it
    to `machine` (a FlashSender or an Agent), run its timers, write its answers."""
    waiting = getattr(port, "in_waiting", 0)
    data = port.read(max(1, waiting))
    out = machine.receive(data, clock()) if data else b""
    out += machine.poll(clock())
    if out:
        port.write(out)


def flash_bundle(port: Union[str, SerialLike], bundle: bytes, progress: Optional[Progress] = None,
                 config: FlashConfig = FlashConfig(),
                 clock: Callable[[], float] = time.monotonic) -> FlashResult:
    """Send `bundle` to the serial agent on `port` (URL or serial-like object; a URL is
    opened and closed here). Resumes from what the device already holds of the same bundle;
    returns once the device reports it installed and active. FlashError (FlashTimeout,
    DeviceError) otherwise: the device then keeps its old model."""
    import serial

    ser = open_port(port, config.baud)
    sender = FlashSender(bundle, config, progress)
    try:
        ser.write(sender.start(clock()))
        while not sender.finished:
            pump(ser, sender, clock)
    except (serial.SerialException, OSError) as err:
        raise FlashError(f"link lost at byte {sender.acknowledged} of {len(bundle)} "
                         f"(flash again to resume): {err}") from err
    finally:
        if isinstance(port, str):
            ser.close()
    if sender.error is not None:
        raise sender.error
    assert sender.result is not None  # finished without error means a result
    _LOGGER.info("flashed %d bytes (%d retransmits)", len(bundle), sender.result.retransmits)
    return sender.result


def add_serial_args(parser: argparse.ArgumentParser, baud: int = 115200) -> None:
    """The shared `--port URL` and `--baud N` arguments of the serial commands."""
    parser.add_argument("--port", required=True,
                        help="serial port or pyserial URL (/dev/ttyUSB0, socket://host:port, "
                             "rfc2217://host:port, loop://)")
    parser.add_argument("--baud", type=int, default=baud, help=f"line rate (default {baud})")


def describe(result: FlashResult) -> List[str]:
    """Lines for a human about a finished flash."""
    lines = [f"{result.total} bytes sent and installed: {result.detail}"]
    if result.resumed_from:
        lines.append(f"resumed from byte {result.resumed_from}")
    if result.retransmits or result.dropped:
        lines.append(f"{result.retransmits} frames re-sent, {result.dropped} damaged frames "
                     "dropped")
    return lines
