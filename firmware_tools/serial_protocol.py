"""The serial flashing protocol's wire format: COBS framing, CRC32, and the message types.

Pure functions and frozen dataclasses, no I/O: `encode_frame(msg, seq)` gives the bytes to
write (COBS-encoded, ending in the 0x00 delimiter), and `FrameDecoder.feed(data)` turns
received bytes into `(seq, message)` pairs, dropping (and counting) damaged frames. The
sender (`firmware_tools.flash`) and the receiver (`firmware_tools.agent`) are built on it;
docs/serial-protocol.md is the specification.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import ClassVar, Dict, List, Tuple, Type

from edge_slm.errors import EdgeSlmError

PROTOCOL_VERSION = 2
"""Version sent in the handshake; a receiver refuses any other (2: every frame carries the
transfer's nonce; the final STATUS the installed bundle's SHA-256)."""
NONCE_BYTES = 8
"""Length of the random nonce a sender picks per transfer; every frame of the transfer, both
ways, carries it, and each side ignores frames with another one."""
DEFAULT_MAX_FRAME = 1024
"""Largest DATA payload (bytes of the bundle per frame) a sender proposes."""
MAX_FRAME_LIMIT = 4096
"""Largest DATA payload either side accepts in a handshake (bounds receiver memory)."""
DEFAULT_WINDOW = 8
"""Frames a sender may have unacknowledged; the receiver buffers as many out of order."""
DELIMITER = b"\x00"
"""Ends every frame on the wire; COBS guarantees no other zero byte."""
_HEADER = struct.Struct(f"<BH{NONCE_BYTES}s")  # type, sequence number, transfer nonce
_CRC = struct.Struct("<I")
#: Longest encoded frame the decoder keeps before it gives up on a missing delimiter.
MAX_ENCODED_FRAME = MAX_FRAME_LIMIT + 64


class FlashError(EdgeSlmError):
    """Flashing over serial failed: the link, the protocol, or the device refused."""


class FlashTimeout(FlashError):
    """The other side stopped answering (after every retry)."""


class DeviceError(FlashError):
    """The receiver reported a failure in its final status frame."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(f"device error {code} ({STATUS_TEXT.get(code, 'unknown')})"
                         + (f": {detail}" if detail else ""))
        self.code = code
        """The status code (see STATUS_TEXT)."""
        self.detail = detail
        """The receiver's message."""


class FrameError(FlashError):
    """A frame that does not decode (bad COBS, CRC mismatch, unknown type, short payload)."""


# -- status codes (one table, convention 11) -------------------------------------------------

STATUS_OK = 0
STATUS_BAD_VERSION = 1
STATUS_BAD_HASH = 2
STATUS_BAD_BUNDLE = 3
STATUS_BAD_SIGNATURE = 4
STATUS_SELF_TEST_FAILED = 5
STATUS_STORAGE = 6
STATUS_PROTOCOL = 7
STATUS_BUSY = 8
STATUS_DOWNGRADE = 9
STATUS_TEXT: Dict[int, str] = {
    STATUS_OK: "installed and active",
    STATUS_BAD_VERSION: "protocol version or frame size not supported",
    STATUS_BAD_HASH: "SHA-256 of the received bundle does not match the transfer id",
    STATUS_BAD_BUNDLE: "not a valid bundle",
    STATUS_BAD_SIGNATURE: "bundle unsigned or not signed by a trusted key",
    STATUS_SELF_TEST_FAILED: "golden self-test failed; old model kept",
    STATUS_STORAGE: "could not store the bundle (disk full or not writable)",
    STATUS_PROTOCOL: "protocol violation",
    STATUS_BUSY: "busy with another transfer or install; try again",
    STATUS_DOWNGRADE: "bundle version not newer than the active bundle's",
}


# -- COBS and CRC ------------------------------------------------------------------------------

def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: `data` without any zero byte (delimiter not added)."""
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Undo `cobs_encode`; FrameError on a zero byte or a code that runs past the end."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError("COBS: zero byte inside a frame")
        end = i + code
        if end > n:
            raise FrameError(f"COBS: block of {code - 1} bytes runs past the frame end")
        block = data[i + 1:end]
        if 0 in block:
            raise FrameError("COBS: zero byte inside a frame")
        out += block
        i = end
        if code < 255 and i < n:
            out.append(0)
    return bytes(out)


def crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3, as zlib) of `data`."""
    return zlib.crc32(data) & 0xFFFFFFFF


# -- messages --------------------------------------------------------------------------------

class Message:
    """Base of the message types: a one-byte `TYPE` and a fixed payload layout."""

    TYPE: ClassVar[int] = 0
    _REGISTRY: ClassVar[Dict[int, Type["Message"]]] = {}

    def __init_subclass__(cls, **kw: object) -> None:
        super().__init_subclass__(**kw)
        if cls.TYPE in Message._REGISTRY:
            raise ValueError(f"message type {cls.TYPE:#x} registered twice")
        Message._REGISTRY[cls.TYPE] = cls

    def encode(self) -> bytes:
        """The payload bytes (after the frame header)."""
        raise NotImplementedError

    @classmethod
    def decode(cls, payload: bytes) -> "Message":
        """The message from its payload; FrameError when it does not fit the layout."""
        raise NotImplementedError

    @staticmethod
    def type_for(code: int) -> Type["Message"]:
        """The class for a type byte; FrameError when unknown."""
        try:
            return Message._REGISTRY[code]
        except KeyError:
            raise FrameError(f"unknown message type {code:#x}") from None


def _unpack(layout: struct.Struct, payload: bytes, name: str, exact: bool = True) -> tuple:
    if len(payload) < layout.size or (exact and len(payload) != layout.size):
        raise FrameError(f"{name}: payload of {len(payload)} bytes, expected "
                         f"{'' if exact else 'at least '}{layout.size}")
    return layout.unpack_from(payload)


_HELLO = struct.Struct("<BHI32s")
_HELLO_ACK = struct.Struct("<BHBI32s")
_OFFSET = struct.Struct("<I")
_DONE = struct.Struct("<I32s")
_STATUS = struct.Struct("<B32s")


@dataclass(frozen=True)
class Hello(Message):
    """Sender -> receiver: start (or resume) a transfer."""

    TYPE: ClassVar[int] = 0x01
    version: int
    """The sender's protocol version."""
    max_frame: int
    """Largest DATA payload the sender will use."""
    total: int
    """Size of the whole bundle in bytes."""
    transfer_id: bytes
    """SHA-256 of the whole bundle (32 bytes): names the transfer and checks the result."""

    def encode(self) -> bytes:
        """The payload bytes."""
        return _HELLO.pack(self.version, self.max_frame, self.total, self.transfer_id)

    @classmethod
    def decode(cls, payload: bytes) -> "Hello":
        """The message from its payload."""
        return cls(*_unpack(_HELLO, payload, "HELLO"))


@dataclass(frozen=True)
class HelloAck(Message):
    """Receiver -> sender: the handshake's answer, with where to resume."""

    TYPE: ClassVar[int] = 0x02
    version: int
    """The receiver's protocol version."""
    max_frame: int
    """Largest DATA payload the receiver accepts (the sender uses the smaller)."""
    window: int
    """Frames the receiver buffers out of order (the sender's window is at most this)."""
    resume_offset: int
    """Bytes of this transfer the receiver already holds; the sender starts there."""
    transfer_id: bytes
    """The transfer this answers (echoed from HELLO)."""

    def encode(self) -> bytes:
        """The payload bytes."""
        return _HELLO_ACK.pack(self.version, self.max_frame, self.window, self.resume_offset,
                               self.transfer_id)

    @classmethod
    def decode(cls, payload: bytes) -> "HelloAck":
        """The message from its payload."""
        return cls(*_unpack(_HELLO_ACK, payload, "HELLO_ACK"))


@dataclass(frozen=True)
class Data(Message):
    """Sender -> receiver: `data` belongs at byte `offset` of the bundle."""

    TYPE: ClassVar[int] = 0x03
    offset: int
    """Where `data` starts in the bundle."""
    data: bytes
    """A chunk of at most the negotiated max_frame bytes."""

    def encode(self) -> bytes:
        """The payload bytes."""
        return _OFFSET.pack(self.offset) + self.data

    @classmethod
    def decode(cls, payload: bytes) -> "Data":
        """The message from its payload."""
        (offset,) = _unpack(_OFFSET, payload, "DATA", exact=False)
        return cls(offset, bytes(payload[_OFFSET.size:]))


@dataclass(frozen=True)
class Ack(Message):
    """Receiver -> sender: every byte before `offset` is stored (cumulative)."""

    TYPE: ClassVar[int] = 0x04
    offset: int
    """Bytes received in order so far."""

    def encode(self) -> bytes:
        """The payload bytes."""
        return _OFFSET.pack(self.offset)

    @classmethod
    def decode(cls, payload: bytes) -> "Ack":
        """The message from its payload."""
        return cls(*_unpack(_OFFSET, payload, "ACK"))


@dataclass(frozen=True)
class Nak(Message):
    """Receiver -> sender: the frame at `offset` is missing (later ones arrived)."""

    TYPE: ClassVar[int] = 0x05
    offset: int
    """The first byte the receiver still needs."""

    def encode(self) -> bytes:
        """The payload bytes."""
        return _OFFSET.pack(self.offset)

    @classmethod
    def decode(cls, payload: bytes) -> "Nak":
        """The message from its payload."""
        return cls(*_unpack(_OFFSET, payload, "NAK"))


@dataclass(frozen=True)
class Done(Message):
    """Sender -> receiver: all `total` bytes are acknowledged; check and install."""

    TYPE: ClassVar[int] = 0x06
    total: int
    """The bundle's size (must equal the receiver's cumulative offset)."""
    transfer_id: bytes
    """The transfer this ends (a receiver answers a repeated DONE with the same STATUS)."""

    def encode(self) -> bytes:
        """The payload bytes."""
        return _DONE.pack(self.total, self.transfer_id)

    @classmethod
    def decode(cls, payload: bytes) -> "Done":
        """The message from its payload."""
        return cls(*_unpack(_DONE, payload, "DONE"))


@dataclass(frozen=True)
class Status(Message):
    """Receiver -> sender: the final outcome (code 0 is success; see STATUS_TEXT)."""

    TYPE: ClassVar[int] = 0x07
    code: int
    """STATUS_OK or an error code."""
    detail: str = ""
    """A human-readable message (UTF-8)."""
    sha256: bytes = bytes(32)
    """STATUS_OK: SHA-256 of the bundle now active, read back from the slot (the sender
    checks it is the one it sent); zeros otherwise."""

    def encode(self) -> bytes:
        """The payload bytes."""
        return _STATUS.pack(self.code, self.sha256) + \
            self.detail.encode("utf-8")[:MAX_FRAME_LIMIT // 2]

    @classmethod
    def decode(cls, payload: bytes) -> "Status":
        """The message from its payload."""
        code, digest = _unpack(_STATUS, payload, "STATUS", exact=False)
        try:
            detail = bytes(payload[_STATUS.size:]).decode("utf-8")
        except UnicodeDecodeError as err:
            raise FrameError(f"STATUS: detail is not UTF-8 ({err})") from err
        return cls(code, detail, digest)


# -- frames ----------------------------------------------------------------------------------

def encode_frame(msg: Message, seq: int, nonce: bytes) -> bytes:
    """The bytes on the wire for one message of the transfer `nonce`:
    COBS(type, seq, nonce, payload, CRC32) + 0x00."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"a nonce has {NONCE_BYTES} bytes, not {len(nonce)}")
    body = _HEADER.pack(msg.TYPE, seq & 0xFFFF, nonce) + msg.encode()
    return cobs_encode(body + _CRC.pack(crc32(body))) + DELIMITER


def decode_frame(encoded: bytes) -> Tuple[int, bytes, Message]:
    """(seq, nonce, message) of one frame without its delimiter; FrameError when damaged."""
    raw = cobs_decode(encoded)
    if len(raw) < _HEADER.size + _CRC.size:
        raise FrameError(f"frame of {len(raw)} bytes is too short")
    body, (crc,) = raw[:-_CRC.size], _CRC.unpack(raw[-_CRC.size:])
    if crc32(body) != crc:
        raise FrameError("CRC mismatch")
    code, seq, nonce = _HEADER.unpack_from(body)
    return seq, nonce, Message.type_for(code).decode(body[_HEADER.size:])


class FrameDecoder:
    """Split a byte stream at delimiters and decode each frame; damaged ones are counted and
    dropped (the sliding window recovers them), never raised."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.dropped = 0
        """Frames dropped as damaged (bad COBS, CRC, type or length, or overlong)."""

    def feed(self, data: bytes) -> List[Tuple[int, bytes, Message]]:
        """Every complete, intact frame in `data` (plus what was buffered), in order, as
        (seq, nonce, message)."""
        out: List[Tuple[int, bytes, Message]] = []
        self._buf += data
        while True:
            end = self._buf.find(0)
            if end < 0:
                if len(self._buf) > MAX_ENCODED_FRAME:  # a lost delimiter: resynchronize
                    self._buf.clear()
                    self.dropped += 1
                return out
            chunk = bytes(self._buf[:end])
            del self._buf[:end + 1]
            if not chunk:
                continue
            try:
                out.append(decode_frame(chunk))
            except FrameError:
                self.dropped += 1
