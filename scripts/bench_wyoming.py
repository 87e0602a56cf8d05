#!/usr/bin/env python3
"""The Wyoming acceptance benchmark: what the Wyoming service adds on top of the engine and
the network, all measured in the same run, on loopback, in one process.

  (a) engine: `IntentEngine.parse` of the texts in-process (p50/p99);
  (b) bare TCP: an echo server (a thread per connection, as ours) and an asyncio client
      sending messages the size of a Wyoming transcript and reading as many bytes back
      (p50/p99), on one connection, and with a new connection per message;
  (c) Wyoming: `edge_slm.daemon.wyoming_server.WyomingServer` with the shipped bundle and the
      `wyoming` library's own client (AsyncTcpClient): transcript -> intent or
      not-recognized (p50/p99), on one connection, and with a new connection per sentence
      (what Home Assistant does).

Prints a table with the ratio of each Wyoming p50 to engine p50 + the matching bare TCP p50;
the target is within 2x. Usage:
    python scripts/bench_wyoming.py [--n 2000] [--bundle PATH]
Needs the dev extra (the wyoming library).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Awaitable, Callable, List, Optional

import numpy as np
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient

from edge_slm.daemon import DaemonConfig
from edge_slm.daemon.served import ServedEngine
from edge_slm.daemon.wyoming_handler import WyomingHandler
from edge_slm.daemon.wyoming_server import WyomingServer
from edge_slm.protocols import wyoming as w
from edge_slm.protocols.wyoming_wire import Event
from edge_slm.runtime.engine import IntentEngine

TEXTS = ("turn off the kitchen lights", "set the bedroom to 20 degrees", "is the garage door open",
         "turn on the lamp", "what time is it", "what is the capital of france")
"""Sentences, taken in turn."""
WARMUP = 50
"""Untimed rounds before each timed series (connections, caches, the interpreter)."""
TARGET = 2.0
"""Largest acceptable ratio of the Wyoming p50 to engine p50 + bare TCP p50."""


def echo_server() -> socket.socket:
    """A loopback echo server, a thread per connection; returns the listener."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener


async def timed(n: int, one: Callable[[int], Awaitable[None]]) -> np.ndarray:
    """Milliseconds of `one(i)` for i in range(n), after WARMUP untimed rounds."""
    for i in range(WARMUP):
        await one(i)
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        await one(i)
        out[i] = (time.perf_counter() - t0) * 1000.0
    return out


async def bare(port: int, n: int, size: int, reconnect: bool) -> np.ndarray:
    """Echo round trips of `size` bytes (a new connection each with `reconnect`)."""
    message = b"x" * (size - 1) + b"\n"
    conn: List[Optional[asyncio.StreamWriter]] = [None]
    reader: List[Optional[asyncio.StreamReader]] = [None]

    async def one(i: int) -> None:
        if conn[0] is None or reconnect:
            reader[0], conn[0] = await asyncio.open_connection("127.0.0.1", port)
        assert reader[0] is not None and conn[0] is not None
        conn[0].write(message)
        await conn[0].drain()
        await reader[0].readexactly(size)
        if reconnect:
            conn[0].close()
            await conn[0].wait_closed()

    return await timed(n, one)


async def wyoming(port: int, n: int, reconnect: bool) -> np.ndarray:
    """Transcript -> answer round trips with the wyoming library's client."""
    held: List[Optional[AsyncTcpClient]] = [None]

    async def one(i: int) -> None:
        client = held[0]
        if client is None or reconnect:
            client = AsyncTcpClient("127.0.0.1", port)
            await client.connect()
            held[0] = client
        await client.write_event(Transcript(TEXTS[i % len(TEXTS)]).event())
        answer = await client.read_event()
        assert answer is not None and answer.type in ("intent", "not-recognized"), answer
        if reconnect:
            await client.disconnect()

    return await timed(n, one)


def main() -> int:
    """Run the benchmark; non-zero exit when a Wyoming row misses the target."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="timed round trips per row")
    ap.add_argument("--bundle", type=Path, help="bundle (default: the shipped int8 one)")
    args = ap.parse_args()
    engine = IntentEngine.load(args.bundle)
    for i in range(WARMUP):
        engine.parse(TEXTS[i % len(TEXTS)])
    parse = np.empty(args.n)
    for i in range(args.n):
        t0 = time.perf_counter()
        engine.parse(TEXTS[i % len(TEXTS)])
        parse[i] = (time.perf_counter() - t0) * 1000.0
    handler = WyomingHandler(ServedEngine(engine), DaemonConfig(rate_limit=0))
    server = WyomingServer(handler, "127.0.0.1", 0)
    _, port = server.start()
    echo = echo_server()
    # the bare messages carry as many bytes each way as a transcript and its answer together
    request = w.Transcript(TEXTS[0])
    answer = handler.handle(Event(request.TYPE, request.to_data()))
    size = (len(request.to_bytes()) + sum(len(e.to_bytes()) for e in answer)) // 2
    try:
        rows = asyncio.run(_rows(port, echo.getsockname()[1], args.n, size))
    finally:
        server.stop()
        echo.close()
    p50 = float(np.percentile(parse, 50))
    print(f"bundle {engine.bundle.model_id}, {args.n} round trips a row, loopback, "
          f"messages of {size} bytes for bare TCP")
    print(f"{'what':<34} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7}")
    print(f"{'engine parse (in-process)':<34} {p50:8.3f} {np.percentile(parse, 99):8.3f} "
          f"{'':>7}")
    ok = True
    for label, base, wy in rows:
        b50 = float(np.percentile(base, 50))
        print(f"{'bare TCP ' + label:<34} {b50:8.3f} {np.percentile(base, 99):8.3f} {'':>7}")
        ratio = float(np.percentile(wy, 50)) / (p50 + b50)
        ok &= ratio <= TARGET
        print(f"{'Wyoming ' + label:<34} {np.percentile(wy, 50):8.3f} "
              f"{np.percentile(wy, 99):8.3f} {ratio:6.2f}x")
    print(f"ratio: Wyoming p50 / (engine p50 + bare TCP p50); target <= {TARGET:g}x: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


async def _rows(port: int, echo_port: int, n: int, size: int):
    out = []
    for label, reconnect in (("(one connection)", False), ("(a connection each)", True)):
        base = await bare(echo_port, n, size, reconnect)
        wy = await wyoming(port, n, reconnect)
        out.append((label, base, wy))
    return out


if __name__ == "__main__":
    sys.exit(main())
