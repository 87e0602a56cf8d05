"""The Wyoming I/O layer: a TCP server, one thread per connection, `WyomingHandler` in the
middle (`edge-slm serve --wyoming tcp://HOST:PORT`).

    server = WyomingServer(WyomingHandler(source, config), "0.0.0.0", 10500)
    host, port = server.start()     # listening; returns at once (port 0: a free one)
    server.stop()                   # closes the listener and every connection, joins

Each connection's bytes go through an `EventDecoder` (limits before memory is spent); each
event's answer is written back in order. Bytes that are no event get an `error` event and the
connection goes on, unless the decoder had to stop (a declared length over the limit): then
the `error` is written and the connection closed. A handler that raises is logged and
answered with an `error`; nothing stops the server but `stop()`. At most `max_connections`
connections are served at once (one more gets an `error` "busy" and is closed), a connection
idle for `idle_timeout_s` is closed, and a client that does not read its answers is dropped
when a write has waited that long. Thread-safe where it says so; the engine's lock is the
handler's `ServedEngine`'s.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import List, Optional, Set, Tuple

from ..errors import ConfigError
from ..protocols.wyoming import Error, WyomingEvent
from ..protocols.wyoming_wire import Event, EventDecoder, FrameError
from . import DEFAULT_WYOMING_PORT, parse_wyoming_url  # noqa: F401  (re-exported)
from .wyoming_handler import INTERNAL, WyomingHandler
from .wyoming_zeroconf import Announcement, announce

_LOGGER = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
"""Connections served at once (Home Assistant opens one per sentence and closes it)."""
IDLE_TIMEOUT_S = 60.0
"""A connection with nothing read for this long is closed; also the longest wait of a write
to a client that does not read."""
ACCEPT_POLL_S = 0.5
"""The listener's accept timeout: bounds how late stop() is noticed by the accept loop."""
RECV_BYTES = 64 * 1024
"""Most bytes read from a connection at once."""
JOIN_TIMEOUT_S = 5.0
"""On stop(): longest wait for each thread to end."""
BUSY = "busy"
"""Error code: too many connections at once."""


class WyomingServer:
    """The handler on a TCP port (see module doc)."""

    def __init__(self, handler: WyomingHandler, host: str, port: int,
                 max_connections: int = MAX_CONNECTIONS,
                 idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        if max_connections < 1 or not idle_timeout_s > 0:
            raise ConfigError("a Wyoming server needs max_connections >= 1 and a positive "
                              "idle timeout")
        self.handler = handler
        self.host = host
        self.port = port
        """The port asked for; the bound one once started."""
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.served = 0
        """Connections taken so far (busy refusals not counted)."""
        self._listener: Optional[socket.socket] = None
        self._accepting: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _connections and _threads
        self._connections: Set[socket.socket] = set()
        self._threads: Set[threading.Thread] = set()

    @property
    def address(self) -> str:
        """tcp://HOST:PORT as bound (for messages)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"

    def start(self) -> Tuple[str, int]:
        """Bind, listen and start accepting in a thread; (host, port) bound. ConfigError when
        the address cannot be bound (in use, not this machine's)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            listener = socket.create_server((self.host, self.port), family=family,
                                            backlog=self.max_connections)
        except OSError as err:
            raise ConfigError(f"Wyoming: cannot listen on {self.address}: {err.strerror or err}"
                              " (another service on the port? --wyoming tcp://HOST:PORT)") \
                from None
        listener.settimeout(ACCEPT_POLL_S)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._stop.clear()
        self._accepting = threading.Thread(target=self._accept_loop, daemon=True,
                                           name="wyoming-accept")
        self._accepting.start()
        _LOGGER.info("Wyoming: listening on %s", self.address)
        return self.host, self.port

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for the threads (thread-safe)."""
        self._stop.set()
        if self._accepting is not None:
            self._accepting.join(JOIN_TIMEOUT_S)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            connections, threads = list(self._connections), list(self._threads)
        for conn in connections:
            _shutdown(conn)  # wakes its thread's recv
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S)

    # -- threads ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, addr = self._listener.accept()
            except socket.timeout:
                continue
            except OSError as err:  # the listener closed, or out of descriptors
                if self._stop.is_set():
                    return
                _LOGGER.error("Wyoming: accept failed: %s", err)
                self._stop.wait(ACCEPT_POLL_S)
                continue
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                # one answer per request: no waiting to coalesce small writes
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._take(conn, str(addr[0]))

    def _take(self, conn: socket.socket, peer: str) -> None:
        with self._lock:
            busy = len(self._connections) >= self.max_connections
            if not busy:
                self._connections.add(conn)
                thread = threading.Thread(target=self._serve, args=(conn, peer), daemon=True,
                                          name=f"wyoming-{peer}")
                self._threads.add(thread)
        if busy:
            _LOGGER.warning("Wyoming: refused %s: %d connections already", peer,
                            self.max_connections)
            conn.settimeout(1.0)
            self._send(conn, peer, [Error(f"busy: {self.max_connections} connections at "
                                          "once; try again", BUSY)])
            _shutdown(conn)
            conn.close()
            return
        self.served += 1
        thread.start()

    def _serve(self, conn: socket.socket, peer: str) -> None:
        """One connection, until the client closes it, it idles out, or stop()."""
        decoder = EventDecoder()
        conn.settimeout(self.idle_timeout_s)
        try:
            while not self._stop.is_set() and not decoder.failed:
                try:
                    chunk = conn.recv(RECV_BYTES)
                except socket.timeout:
                    _LOGGER.info("Wyoming: closing %s, idle for %.0f s", peer,
                                 self.idle_timeout_s)
                    break
                except OSError:  # reset by the peer, or shut down by stop()
                    break
                if not chunk:
                    break
                replies: List[WyomingEvent] = []
                for item in decoder.feed(chunk):
                    if isinstance(item, FrameError):
                        replies.append(self.handler.frame_error(item, peer))
                    else:
                        replies += self._answer(item, peer)
                if replies and not self._send(conn, peer, replies):
                    break
        finally:
            with self._lock:
                self._connections.discard(conn)
                self._threads.discard(threading.current_thread())
            _shutdown(conn)
            conn.close()

    def _answer(self, event: Event, peer: str) -> List[WyomingEvent]:
        try:
            return self.handler.handle(event, peer)
        except Exception as err:  # the connection's boundary: log, answer, keep serving
            _LOGGER.exception("Wyoming: answering %s failed", peer)
            return [Error(f"internal error: {type(err).__name__}", INTERNAL)]

    def _send(self, conn: socket.socket, peer: str, events: List[WyomingEvent]) -> bool:
        """Write the events; False when the client is gone or does not read."""
        try:
            conn.sendall(b"".join(e.to_bytes() for e in events))
        except OSError as err:  # timed out, reset, or shut down by stop()
            _LOGGER.info("Wyoming: cannot write to %s (%s): closing", peer, err)
            return False
        return True


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed or never connected
        pass


class WyomingService:
    """The server and its zeroconf announcement, started and stopped together."""

    def __init__(self, server: WyomingServer, zeroconf_name: Optional[str] = None) -> None:
        self.server = server
        """The TCP server."""
        self.zeroconf_name = zeroconf_name
        """The name to announce it under (None: not announced)."""
        self.announcement: Optional[Announcement] = None
        """The zeroconf registration while it runs (None: not announced)."""

    @property
    def address(self) -> str:
        """tcp://HOST:PORT as bound."""
        return self.server.address

    def start(self) -> None:
        """Listen (ConfigError when the address cannot be bound), then announce if asked
        (never fails: a service that cannot be announced still serves; the log says why)."""
        host, port = self.server.start()
        if self.zeroconf_name is not None:
            self.announcement = announce(self.zeroconf_name, host, port)

    def stop(self) -> None:
        """Withdraw the announcement, then stop serving."""
        if self.announcement is not None:
            self.announcement.close()
            self.announcement = None
        self.server.stop()
