"""A small WebSocket client (RFC 6455) on asyncio streams, enough to speak Home Assistant's
WebSocket API with the standard library alone (the device side stays light).

    ws = await connect("ws://hub:8123/api/websocket", timeout_s=10.0,
                       max_message_bytes=32 * 1024 * 1024)
    await ws.send_text('{"type": "auth", "access_token": "..."}')
    text = await ws.receive_text()    # pings answered on the way; WebSocketClosed at the end
    await ws.close()

What it does: the opening handshake (a random key, the server's `Sec-WebSocket-Accept`
checked), text messages (fragmented ones reassembled), client frames masked with a fresh key
each, pings answered with pongs, the closing handshake both ways. What it does not: binary
messages (refused: close 1003), extensions (compression is not offered), subprotocols.
`wss://` uses the system's trust store unless an `ssl.SSLContext` is given.

The server is not trusted with memory: the handshake response may be at most
MAX_HANDSHAKE_BYTES, and a message's length is checked from each frame's header before its
payload is read (past `max_message_bytes` the connection is closed with 1009). A masked server
frame, reserved bits or opcodes, a long or fragmented control frame, text that is not UTF-8:
each closes the connection with its RFC 6455 code and raises WebSocketError. Reading is not
cancellation-safe mid-frame: keep one reader task per connection and time out around it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import struct
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from ..errors import EdgeSlmError
from .redact import redact_url

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The RFC 6455 constant the server's accept key is made with."""
MAX_HANDSHAKE_BYTES = 16 * 1024
"""Largest handshake response (status line and headers) read."""
CLOSE_TIMEOUT_S = 2.0
"""Longest wait for the server's close frame after ours."""
MAX_CONTROL_BYTES = 125
"""RFC 6455: control frames carry at most this much."""
OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
NORMAL, GOING_AWAY, PROTOCOL_ERROR, UNSUPPORTED = 1000, 1001, 1002, 1003
INVALID_DATA, TOO_BIG = 1007, 1009


class WebSocketError(EdgeSlmError):
    """The connection could not be opened, or the server broke the protocol."""


class WebSocketClosed(WebSocketError):
    """The connection was closed (by the server, or by us)."""

    def __init__(self, code: Optional[int], reason: str = "") -> None:
        said = f" ({reason})" if reason else ""
        super().__init__(f"WebSocket closed with code {code}{said}" if code is not None
                         else "WebSocket connection lost")
        self.code = code
        """The close code (None: the connection ended without a close frame)."""
        self.reason = reason
        """The close reason the peer gave."""


def accept_key(key: str) -> str:
    """The `Sec-WebSocket-Accept` a server answers the client key `key` with."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode("ascii")).digest()).decode()


def mask(data: bytes, key: bytes) -> bytes:
    """`data` XORed with the 4-byte `key` repeated (masking and unmasking alike)."""
    n = len(data)
    if not n:
        return b""
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes, mask_key: Optional[bytes] = None,
                 fin: bool = True) -> bytes:
    """One frame: FIN, opcode, the payload's length in 7, 16 or 64 bits, masked with
    `mask_key` (4 bytes; a client's frames always are) or not (None)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    bit = 0x80 if mask_key is not None else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask_key is None:
        return head + payload
    return head + mask_key + mask(payload, mask_key)


class WebSocket:
    """An open client connection (see the module doc)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 max_message_bytes: int) -> None:
        self.reader = reader
        self.writer = writer
        self.max_message_bytes = max_message_bytes
        """Largest message (all its fragments together) read."""
        self.closed: Optional[WebSocketClosed] = None
        """Set once the connection is closed (why)."""
        self._close_sent = False

    async def send_text(self, text: str) -> None:
        """Send one text message (WebSocketClosed once the connection is closed)."""
        await self._send(OP_TEXT, text.encode("utf-8"))

    async def receive_text(self) -> str:
        """The next text message; pings are answered meanwhile. WebSocketClosed when the
        connection ends, WebSocketError when the server breaks the protocol."""
        parts: List[bytes] = []
        size = 0
        opcode: Optional[int] = None
        while True:
            fin, op, payload = await self._read_frame(self.max_message_bytes - size)
            if op >= OP_CLOSE:
                await self._control(fin, op, payload)
                continue
            if (op == OP_CONTINUATION) != (opcode is not None) or op > OP_BINARY:
                await self._fail(PROTOCOL_ERROR, f"unexpected frame (opcode {op})")
            opcode = opcode if opcode is not None else op
            parts.append(payload)
            size += len(payload)
            if fin:
                break
        if opcode == OP_BINARY:
            await self._fail(UNSUPPORTED, "a binary message (only text is spoken)")
        try:
            return b"".join(parts).decode("utf-8")
        except UnicodeDecodeError:
            await self._fail(INVALID_DATA, "a text message that is not UTF-8")
            raise  # unreachable: _fail raises

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """The closing handshake: our close frame, the server's answer (at most
        CLOSE_TIMEOUT_S), then the socket. Never raises."""
        try:
            if not self._close_sent and self.closed is None:
                await self._send_close(code, reason)
                await asyncio.wait_for(self._until_close(), CLOSE_TIMEOUT_S)
        except (WebSocketError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed = self.closed or WebSocketClosed(code, reason)
            self._shut()

    # -- frames ----------------------------------------------------------------------------

    async def _until_close(self) -> None:
        while True:
            await self.receive_text()  # returns on WebSocketClosed (raised)

    async def _control(self, fin: bool, op: int, payload: bytes) -> None:
        if not fin or len(payload) > MAX_CONTROL_BYTES:
            await self._fail(PROTOCOL_ERROR, "a fragmented or long control frame")
        if op == OP_PING:
            await self._send(OP_PONG, payload)
        elif op == OP_CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            reason = payload[2:].decode("utf-8", "replace")
            if not self._close_sent:
                await self._send_close(code if code is not None else NORMAL, "")
            self.closed = WebSocketClosed(code, reason)
            self._shut()
            raise self.closed
        elif op != OP_PONG:
            await self._fail(PROTOCOL_ERROR, f"unknown control opcode {op}")

    async def _read_frame(self, room: int) -> Tuple[bool, int, bytes]:
        """(FIN, opcode, payload) of the next frame; its length is checked against `room`
        (what the message may still take) before the payload is read."""
        if self.closed is not None:
            raise self.closed
        try:
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            if b0 & 0x70 or b1 & 0x80:
                await self._fail(PROTOCOL_ERROR, "reserved bits set or a masked server frame")
            if (b0 & 0x0F) < OP_CLOSE and n > room:
                await self._fail(TOO_BIG, f"a message over {self.max_message_bytes} bytes")
            payload = await self.reader.readexactly(n) if n else b""
        except (asyncio.IncompleteReadError, ConnectionError) as err:
            self.closed = WebSocketClosed(None, str(err) if isinstance(err, OSError) else "")
            self._shut()
            raise self.closed from None
        return bool(b0 & 0x80), b0 & 0x0F, payload

    async def _send(self, opcode: int, payload: bytes) -> None:
        if self.closed is not None or (self._close_sent and opcode != OP_CLOSE):
            raise self.closed or WebSocketClosed(None, "closing")
        try:
            self.writer.write(encode_frame(opcode, payload, os.urandom(4)))
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as err:
            self.closed = WebSocketClosed(None, str(err))
            self._shut()
            raise self.closed from None

    async def _send_close(self, code: int, reason: str) -> None:
        self._close_sent = True
        await self._send(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:123])

    async def _fail(self, code: int, why: str) -> None:
        """Close with `code` and raise WebSocketError(why)."""
        try:
            if not self._close_sent:
                await self._send_close(code, "")
        except WebSocketError:
            pass
        self.closed = WebSocketClosed(code, why)
        self._shut()
        raise WebSocketError(f"the server sent {why}; connection closed ({code})")

    def _shut(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


async def connect(url: str, timeout_s: float, max_message_bytes: int,
                  ssl_context: Optional[ssl.SSLContext] = None) -> WebSocket:
    """Open a WebSocket to a ws:// or wss:// URL: TCP (and TLS), the opening handshake, all
    within `timeout_s`; WebSocketError (naming the URL) when any of it fails."""
    parts = urlsplit(url)
    shown = redact_url(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise WebSocketError(f"{shown}: not a ws:// or wss:// URL")
    tls = parts.scheme == "wss"
    port = parts.port or (443 if tls else 80)
    context = (ssl_context or ssl.create_default_context()) if tls else None
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.port is not None:
        host += f":{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = (f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\nUser-Agent: edge-slm\r\n\r\n")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            parts.hostname, port, ssl=context, limit=MAX_HANDSHAKE_BYTES), timeout_s)
    except (OSError, asyncio.TimeoutError) as err:
        raise WebSocketError(f"cannot connect to {shown}: {err or 'no answer in time'}") \
            from None
    try:
        writer.write(request.encode("ascii"))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
        _check_handshake(head, key, shown)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
            asyncio.LimitOverrunError, WebSocketError) as err:
        writer.close()
        if isinstance(err, WebSocketError):
            raise
        why = {asyncio.TimeoutError: "no answer in time",
               asyncio.LimitOverrunError: "a handshake response too long",
               asyncio.IncompleteReadError: "the connection closed"}.get(type(err), str(err))
        raise WebSocketError(f"WebSocket handshake with {shown} failed: {why}") from None
    return WebSocket(reader, writer, max_message_bytes)


def _check_handshake(head: bytes, key: str, shown: str) -> None:
    """WebSocketError unless `head` is a 101 response accepting `key`."""
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if len(status) < 2 or status[1] != "101":
        raise WebSocketError(f"{shown} did not open a WebSocket: {lines[0][:100]!r} (is this "
                             "the WebSocket URL?)")
    if headers.get("upgrade", "").lower() != "websocket" \
            or "upgrade" not in headers.get("connection", "").lower() \
            or headers.get("sec-websocket-accept") != accept_key(key):
        raise WebSocketError(f"{shown}: the handshake response does not accept our key")
    if headers.get("sec-websocket-extensions"):
        raise WebSocketError(f"{shown}: the server chose an extension we did not offer")
