"""The stdlib WebSocket client (`edge_slm.daemon.websocket`) against the `websockets` library's
server (an RFC 6455 implementation of its own, which refuses unmasked client frames) and, for
what a correct server never does, against a raw asyncio server: messages of every length
encoding, fragments, pings answered, closes both ways, size limits before memory, and each
protocol violation a WebSocketError."""

from __future__ import annotations

import asyncio
import base64
import struct

import pytest
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from edge_slm.daemon.websocket import (TOO_BIG, WebSocketClosed, WebSocketError, accept_key,
                                       connect, encode_frame, mask)

LIMIT = 1 << 20


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


async def _with_server(handler, client):
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        return await client(f"ws://127.0.0.1:{port}/api/websocket")


async def _echo(conn):
    try:
        async for msg in conn:
            await conn.send(msg)
    except ConnectionClosed:
        pass


def test_accept_key_is_the_rfc_example():
    # RFC 6455, 1.3: the key and the accept value of its example handshake
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_masking_round_trips_and_frames_carry_their_length():
    key = b"\x01\x02\x03\x04"
    assert mask(mask(b"hello world", key), key) == b"hello world"
    assert mask(b"", key) == b""
    assert encode_frame(0x1, b"hi") == b"\x81\x02hi"
    assert encode_frame(0x1, b"x" * 300)[:4] == b"\x81\x7e" + struct.pack("!H", 300)
    assert encode_frame(0x1, b"x" * 70000)[:10] == b"\x81\x7f" + struct.pack("!Q", 70000)
    masked = encode_frame(0x1, b"hi", key)
    assert masked[1] & 0x80 and masked[2:6] == key and mask(masked[6:], key) == b"hi"


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 300000])
def test_text_of_every_length_encoding_round_trips(size):
    text = ("é" + "abc" * size)[:size] if size else ""

    async def client(url):
        ws = await connect(url, 5.0, LIMIT)
        await ws.send_text(text)
        got = await ws.receive_text()
        await ws.close()
        return got

    assert run(_with_server(_echo, client)) == text


def test_fragments_are_reassembled_and_pings_answered():
    ponged = []

    async def handler(conn):
        await conn.send(["Hello, ", "fragmented ", "world"])  # one message in three frames
        pong = await conn.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        ponged.append(True)
        await conn.send("after the ping")
        await conn.wait_closed()

    async def client(url):
        ws = await connect(url, 5.0, LIMIT)
        first = await ws.receive_text()
        second = await ws.receive_text()  # the ping was answered on the way here
        await ws.close()
        return first, second

    assert run(_with_server(handler, client)) == ("Hello, fragmented world", "after the ping")
    assert ponged == [True]


def test_a_message_over_the_limit_closes_with_1009_before_it_is_read():
    codes = []

    async def handler(conn):
        await conn.send("x" * 5000)
        try:
            await conn.recv()
        except ConnectionClosed as err:
            codes.append(err.rcvd.code if err.rcvd else None)

    async def client(url):
        ws = await connect(url, 5.0, 4096)
        with pytest.raises(WebSocketError, match="over 4096 bytes"):
            await ws.receive_text()
        with pytest.raises(WebSocketClosed):  # and stays closed
            await ws.receive_text()

    run(_with_server(handler, client))
    assert codes == [TOO_BIG]


def test_a_close_from_the_server_is_websocketclosed_with_its_code():
    async def handler(conn):
        await conn.close(1001, "going away")

    async def client(url):
        ws = await connect(url, 5.0, LIMIT)
        with pytest.raises(WebSocketClosed) as info:
            await ws.receive_text()
        with pytest.raises(WebSocketClosed):
            await ws.send_text("too late")
        return info.value

    closed = run(_with_server(handler, client))
    assert (closed.code, closed.reason) == (1001, "going away")


def test_a_binary_message_is_refused():
    async def handler(conn):
        await conn.send(b"\x00\x01")
        await conn.wait_closed()

    async def client(url):
        ws = await connect(url, 5.0, LIMIT)
        with pytest.raises(WebSocketError, match="binary"):
            await ws.receive_text()

    run(_with_server(handler, client))


def test_a_refused_handshake_names_the_status():
    async def refuse(conn, request):
        return conn.respond(404, "no such thing\n")

    async def main():
        async with serve(_echo, "127.0.0.1", 0, process_request=refuse) as server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(WebSocketError, match="404"):
                await connect(f"ws://127.0.0.1:{port}/wrong", 5.0, LIMIT)

    run(main())


def test_nobody_listening_is_a_websocketerror():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(WebSocketError, match="cannot connect"):
            await connect(f"ws://127.0.0.1:{port}/", 5.0, LIMIT)

    run(main())
    with pytest.raises(WebSocketError, match="not a ws"):
        run(connect("http://127.0.0.1:1/", 1.0, LIMIT))


# -- a server that breaks the protocol -----------------------------------------------------------


async def _raw(frames, accept=None, head_extra=b""):
    """A raw server: a handshake (with `accept` as the accept key when given), then `frames`."""
    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = [line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key")][0]
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                     + (accept or accept_key(key)).encode() + b"\r\n" + head_extra + b"\r\n")
        writer.write(frames)
        await writer.drain()
        await reader.read()  # until the client closes
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


@pytest.mark.parametrize("frames,match", [
    (encode_frame(0x1, b"hi", b"abcd"), "masked"),                 # servers never mask
    (b"\xc1\x02hi", "reserved"),                                    # RSV1 without an extension
    (b"\x83\x00", "unexpected frame"),                              # reserved opcode
    (b"\x80\x02hi", "unexpected frame"),                            # continuation of nothing
    (b"\x09\x00", "control"),                                       # fragmented ping
    (encode_frame(0x9, b"x" * 126), "control"),                     # long ping
    (encode_frame(0x1, b"\xff\xfe"), "not UTF-8"),
])
def test_protocol_violations_are_websocketerrors(frames, match):
    async def main():
        server, url = await _raw(frames)
        async with server:
            ws = await connect(url, 5.0, LIMIT)
            with pytest.raises(WebSocketError, match=match):
                await ws.receive_text()
            await ws.close()

    run(main())


def test_a_wrong_accept_key_or_an_unoffered_extension_fails_the_handshake():
    async def main():
        server, url = await _raw(b"", accept=base64.b64encode(b"x" * 20).decode())
        async with server:
            with pytest.raises(WebSocketError, match="accept"):
                await connect(url, 5.0, LIMIT)
        server, url = await _raw(b"", head_extra=b"Sec-WebSocket-Extensions: deflate\r\n")
        async with server:
            with pytest.raises(WebSocketError, match="extension"):
                await connect(url, 5.0, LIMIT)

    run(main())


def test_a_dropped_connection_mid_frame_is_websocketclosed():
    async def main():
        server, url = await _raw(b"\x81\x7e\x01\x00" + b"only part of it")
        async with server:
            ws = await connect(url, 5.0, LIMIT)
            ws.writer.transport.abort()  # the peer vanishes while the frame is unfinished
            with pytest.raises(WebSocketClosed):
                await ws.receive_text()

    run(main())
