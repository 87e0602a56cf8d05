"""Software twins of a serial link, for tests and benchmarks: no device, no real time needed.

- `memory_pair()`: two connected serial-like ends (read/write/timeout/in_waiting/close, like
  a pyserial port) for two threads; closing one end disconnects the other.
- `Faults`: a seeded fault schedule applied frame by frame (split at the 0x00 delimiter): drop,
  flip a bit, duplicate, hold back one frame (reorder), drop single bytes, cut the link after
  some bytes, stall the receiving side.
- `FaultyPort`: a serial-like end whose writes go through `Faults`.
- `simulate()`: a sender and an agent state machine on a simulated UART in virtual time (each
  byte costs 10 bit times at the baud rate), single-threaded and deterministic.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Deque, List, Optional, Protocol, Tuple

import serial

from edge_slm.daemon.serial_port import SerialLike

if TYPE_CHECKING:
    from .agent import Agent
    from .flash import FlashSender

BITS_PER_BYTE = 10
"""Line time of one byte (start bit, 8 data bits, stop bit)."""
LINK_LATENCY_S = 0.001
"""Simulated fixed delay of each direction (driver and USB bridge buffering)."""


class MemoryPort:
    """One end of an in-memory duplex link with pyserial's read/write semantics."""

    def __init__(self, lock: threading.Condition) -> None:
        self._cond = lock
        self._rx = bytearray()
        self.peer: Optional["MemoryPort"] = None
        """The other end."""
        self.timeout: Optional[float] = 1.0
        """Read timeout in seconds (None: block until data)."""
        self.closed = False
        """Whether this end was closed."""

    @property
    def in_waiting(self) -> int:
        """Bytes ready to read."""
        with self._cond:
            return len(self._rx)

    def _check_open(self) -> None:
        if self.closed:
            raise serial.SerialException("port closed")

    def read(self, size: int = 1) -> bytes:
        """Up to `size` bytes, waiting up to `timeout` for the first ones; SerialException
        once the other end is closed and nothing is left."""
        with self._cond:
            self._check_open()
            self._cond.wait_for(lambda: len(self._rx) >= size or self.closed
                                or (self.peer is not None and self.peer.closed), self.timeout)
            self._check_open()
            if not self._rx and self.peer is not None and self.peer.closed:
                raise serial.SerialException("other end disconnected")
            data = bytes(self._rx[:size])
            del self._rx[:size]
            return data

    def write(self, data: bytes) -> int:
        """Send `data` to the other end."""
        with self._cond:
            self._check_open()
            if self.peer is None or self.peer.closed:
                raise serial.SerialException("other end disconnected")
            self.peer._rx += data
            self._cond.notify_all()
        return len(data)

    def close(self) -> None:
        """Close this end; the other end's reads then fail."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def memory_pair() -> Tuple[MemoryPort, MemoryPort]:
    """Two connected ends."""
    cond = threading.Condition()
    a, b = MemoryPort(cond), MemoryPort(cond)
    a.peer, b.peer = b, a
    return a, b


@dataclass(frozen=True)
class FaultRates:
    """Per-frame fault probabilities of one direction."""

    drop: float = 0.0
    """Frame lost."""
    flip: float = 0.0
    """One bit flipped."""
    duplicate: float = 0.0
    """Frame delivered twice."""
    reorder: float = 0.0
    """Frame held back and delivered after the next one."""
    drop_byte: float = 0.0
    """One byte of the frame lost."""


class Faults:
    """A seeded fault schedule; `apply(frame)` gives what reaches the wire instead."""

    def __init__(self, rates: FaultRates = FaultRates(), seed: int = 0,
                 cut_after: Optional[int] = None) -> None:
        self.rates = rates
        """The probabilities."""
        self.cut_after = cut_after
        """Bytes after which the link is cut (None: never)."""
        self.rng = random.Random(seed)
        self.passed = 0
        """Bytes let through so far."""
        self.injected = 0
        """Faults injected so far."""
        self._held: Optional[bytes] = None
        self._partial = bytearray()

    @property
    def cut(self) -> bool:
        """Whether the link has been cut."""
        return self.cut_after is not None and self.passed >= self.cut_after

    def apply(self, data: bytes) -> bytes:
        """The bytes that get through when `data` is written (split into frames at 0x00)."""
        self._partial += data
        out = bytearray()
        while True:
            end = self._partial.find(0)
            if end < 0:
                break
            frame = bytes(self._partial[:end + 1])
            del self._partial[:end + 1]
            out += self._one(frame)
        if self.cut_after is not None:
            room = max(0, self.cut_after - self.passed)
            out = out[:room]
        self.passed += len(out)
        return bytes(out)

    def _one(self, frame: bytes) -> bytes:
        r, rng = self.rates, self.rng
        if rng.random() < r.drop:
            self.injected += 1
            return b""
        if rng.random() < r.flip:
            self.injected += 1
            i = rng.randrange(len(frame))
            frame = frame[:i] + bytes([frame[i] ^ (1 << rng.randrange(8))]) + frame[i + 1:]
        if rng.random() < r.drop_byte:
            self.injected += 1
            i = rng.randrange(len(frame))
            frame = frame[:i] + frame[i + 1:]
        if rng.random() < r.duplicate:
            self.injected += 1
            frame = frame + frame
        if self._held is not None:
            frame, self._held = frame + self._held, None
        elif rng.random() < r.reorder:
            self.injected += 1
            self._held = frame
            return b""
        return frame


class _Port(SerialLike, Protocol):
    """A port that says how many bytes are ready (pyserial's ports, MemoryPort)."""

    @property
    def in_waiting(self) -> int: ...


class FaultyPort:
    """A serial-like end whose writes pass through `Faults` (reads pass unchanged); once the
    schedule cuts the link, the port closes (so the other end sees a disconnect)."""

    def __init__(self, inner: _Port, faults: Faults) -> None:
        self.inner = inner
        """The wrapped port."""
        self.faults = faults
        """The schedule applied to writes."""

    @property
    def timeout(self) -> Optional[float]:
        """The wrapped port's read timeout."""
        return self.inner.timeout

    @timeout.setter
    def timeout(self, value: Optional[float]) -> None:
        self.inner.timeout = value

    @property
    def in_waiting(self) -> int:
        """Bytes ready to read."""
        return self.inner.in_waiting

    def read(self, size: int = 1) -> bytes:
        """Read from the wrapped port."""
        return self.inner.read(size)

    def write(self, data: bytes) -> int:
        """Write what the fault schedule lets through; SerialException once cut."""
        out = self.faults.apply(data)
        if out:
            self.inner.write(out)
        if self.faults.cut:
            self.inner.close()
            raise serial.SerialException("link cut (injected fault)")
        return len(data)

    def close(self) -> None:
        """Close the wrapped port."""
        self.inner.close()


class _Wire:
    """One direction of the simulated UART: bytes arrive after their line time."""

    def __init__(self, baud: Optional[int], faults: Faults) -> None:
        self.baud = baud
        self.faults = faults
        self.free_at = 0.0
        self.queue: Deque[Tuple[float, bytes]] = deque()

    def send(self, data: bytes, now: float) -> None:
        data = self.faults.apply(data)
        if not data:
            return
        start = max(now, self.free_at)
        line = len(data) * BITS_PER_BYTE / self.baud if self.baud else 0.0
        self.free_at = start + line
        self.queue.append((self.free_at + LINK_LATENCY_S, data))

    def take(self, now: float) -> bytes:
        out = bytearray()
        while self.queue and self.queue[0][0] <= now:
            out += self.queue.popleft()[1]
        return bytes(out)

    def next_arrival(self) -> float:
        return self.queue[0][0] if self.queue else float("inf")


@dataclass(frozen=True)
class SimResult:
    """How a simulated transfer went."""

    elapsed_s: float
    """Virtual seconds from the first byte to the end (from `start`)."""
    finished: bool
    """Whether the sender finished (successfully or not) before the time limit."""
    bytes_on_wire: int
    """Bytes the sender put on the line (framing and retransmissions included)."""


def simulate(sender: FlashSender, agent: Agent, baud: Optional[int] = 115200,
             to_agent: Faults = Faults(), to_sender: Faults = Faults(),
             stall: Tuple[float, float] = (0.0, 0.0), limit_s: float = 3600.0,
             start: float = 0.0) -> SimResult:
    """Run `sender` (a FlashSender) against `agent` (an Agent) on a simulated UART in virtual
    time, from `start` (pass the end of the previous run to an agent that ran before: its
    clock must not go back) until the sender finishes or `limit_s` passes. `stall` =
    (start, end), seconds after `start`: the agent reads nothing in between (its bytes wait
    in the line buffer)."""
    down, up = _Wire(baud, to_agent), _Wire(baud, to_sender)
    stall = (start + stall[0], start + stall[1])
    now = start
    down.free_at = up.free_at = start
    hello = sender.start(now)
    sent = len(hello)
    down.send(hello, now)
    while not sender.finished and now <= start + limit_s:
        stalled = stall[0] <= now < stall[1]
        events: List[float] = [up.next_arrival(), sender.next_deadline]
        events.append(stall[1] if stalled else down.next_arrival())
        now = max(now, min(events))
        if now == float("inf"):
            break
        if not (stall[0] <= now < stall[1]):
            data = down.take(now)
            if data:
                up.send(agent.receive(data, now), now)
        data = up.take(now)
        out = (sender.receive(data, now) if data else b"") + sender.poll(now)
        if out:
            sent += len(out)
            down.send(out, now)
    return SimResult(now - start, sender.finished, sent)
