"""An embedded MQTT broker for a one-machine setup (`edge-slm serve --embedded-broker`).

    with EmbeddedBroker(port=0) as broker:      # or: url = broker.start(); ...; broker.stop()
        config = DaemonConfig(broker=broker.url, mqtt_version=broker.mqtt_version)

Two backends, tried in this order:

- `mosquitto`: the system binary (Debian/Raspberry Pi OS package `mosquitto`) started as a
  child process with a generated config: one listener on 127.0.0.1 (loopback only), anonymous
  clients, no persistence. The most reliable choice, and it speaks MQTT 5 and 3.1.1, keeps
  persistent sessions and queues QoS 1 messages for absent clients (what the duty-cycled modes
  rely on).
- `amqtt` (PyPI `amqtt`): a pure-Python asyncio broker run in a thread with its own event
  loop. It speaks MQTT 3.1.1 only (it refuses an MQTT 5 CONNECT), so the daemon must use
  `mqtt_version="3.1.1"` with it (`EmbeddedBroker.mqtt_version` says which), and it has no
  MQTT 5 shared subscriptions. amqtt 0.12.1 drops an anonymous client's session when it
  disconnects and queues nothing for it (only authenticated clean-session-off sessions are
  kept), so with it a duty-cycled daemon would lose the queries sent while it sleeps:
  `EmbeddedBroker.persistent_sessions` is False, and only `always-on` should use it.

When neither is there, `start()` raises `EmbeddedBrokerError` saying what to install. A child
mosquitto is asked (Linux) to get SIGTERM when its parent dies, so a killed daemon does not
leave a broker behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from ..errors import EdgeSlmError
from .mosquitto import (
    LOOPBACK,
    MOSQUITTO,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    MosquittoError,
    MosquittoProcess,
    PortInUse,
    find_mosquitto,
    free_port,
    listening,
    port_free,
)

_LOGGER = logging.getLogger(__name__)

AMQTT = "amqtt"
BACKENDS = (MOSQUITTO, AMQTT)
"""Backends in order of preference."""
PORT_ATTEMPTS = 3
"""With port=0: how many free ports to try (another process may take the one we picked)."""
MAX_QUEUED_MESSAGES = 1000
"""mosquitto's own default: QoS 1 messages it queues per client (for a sleeping duty-cycled
daemon, or one that falls behind) before it drops new ones."""
INSTALL_HINT = ("install mosquitto (Debian, Raspberry Pi OS: sudo apt-get install mosquitto) "
                "or amqtt (pip install amqtt)")


class EmbeddedBrokerError(EdgeSlmError):
    """The embedded broker cannot be started (none installed, port taken, it exited)."""


def amqtt_installed() -> bool:
    """True when the amqtt package can be imported."""
    import importlib.util

    return importlib.util.find_spec("amqtt") is not None


def available_backends(mosquitto_path: Optional[str] = None) -> List[str]:
    """The backends that can run here, in order of preference."""
    out = []
    path = find_mosquitto() if mosquitto_path is None else mosquitto_path
    if path and os.access(path, os.X_OK):
        out.append(MOSQUITTO)
    if amqtt_installed():
        out.append(AMQTT)
    return out


class _Mosquitto:
    """mosquitto as a child process (`MosquittoProcess`) in a folder of its own."""

    mqtt_version = "5"
    persistent_sessions = True

    def __init__(self, path: str, max_queued: int) -> None:
        self.path = path
        self.max_queued = max_queued
        self.process: Optional[MosquittoProcess] = None
        self.folder = tempfile.TemporaryDirectory(prefix="edge-slm-broker-")

    @property
    def proc(self) -> Optional[subprocess.Popen]:
        """The child process (None before start)."""
        return self.process.proc if self.process is not None else None

    def start(self, host: str, port: int) -> bool:
        """Start and wait until it listens; False when the port was taken."""
        # persistence off: the embedded broker lives and dies with the daemon; a session of
        # its own and the parent-death signal: see MosquittoProcess
        self.process = MosquittoProcess(
            Path(self.folder.name), port=port, host=host, binary=self.path,
            max_queued_messages=self.max_queued, log_types=("error", "warning"),
            die_with_parent=True, own_session=True)
        try:
            self.process.start()
        except PortInUse:
            return False
        except MosquittoError as err:
            raise EmbeddedBrokerError(str(err)) from None
        return True

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S."""
        if self.process is not None:
            self.process.stop()
        self.folder.cleanup()

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()


class _Amqtt:
    """amqtt's Broker in a thread with its own asyncio loop (it must be created inside a
    running loop)."""

    mqtt_version = "3.1.1"
    persistent_sessions = False  # amqtt 0.12.1 queues nothing for anonymous clients

    def __init__(self) -> None:
        self.thread: Optional[threading.Thread] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.stopping: Optional[asyncio.Event] = None
        self.ready = threading.Event()
        self.error: Optional[BaseException] = None

    def start(self, host: str, port: int) -> bool:
        """Start the thread and wait until the broker listens; False when the port was
        taken."""
        config = {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
                  # anonymous only: no $SYS topics, no packet logging
                  "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                              {"allow_anonymous": True}}}
        self.ready.clear()
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(config,),
                                       name="edge-slm-amqtt", daemon=True)
        self.thread.start()
        if not self.ready.wait(START_TIMEOUT_S):
            self.stop()
            raise EmbeddedBrokerError(f"amqtt did not start within {START_TIMEOUT_S:g} s")
        if self.error is not None:
            if isinstance(self.error, OSError) or "in use" in str(self.error):
                return False
            raise EmbeddedBrokerError(f"amqtt failed to start: {self.error!r}")
        return listening(host, port)

    def _run(self, config: Dict[str, Any]) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self._serve(config))
        except BaseException as err:  # the thread's boundary: hand it to start()
            if not self.ready.is_set():
                self.error = err
            else:
                _LOGGER.exception("the amqtt broker failed")
        finally:
            self.ready.set()
            loop.close()

    async def _serve(self, config: Dict[str, Any]) -> None:
        from amqtt.broker import Broker

        self.stopping = asyncio.Event()
        broker = Broker(config)
        await broker.start()
        self.ready.set()
        await self.stopping.wait()
        await broker.shutdown()

    def stop(self) -> None:
        """Ask the loop to shut the broker down and wait for the thread."""
        loop, stopping = self.loop, self.stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        if self.thread is not None:
            self.thread.join(STOP_TIMEOUT_S)
            if self.thread.is_alive():
                _LOGGER.warning("the amqtt thread did not end within %.0f s", STOP_TIMEOUT_S)

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


_Backend = Union[_Mosquitto, _Amqtt]


class EmbeddedBroker:
    """A loopback MQTT broker owned by this process (see module doc). Not thread-safe."""

    def __init__(self, port: int = 0, backends: Sequence[str] = BACKENDS,
                 mosquitto_path: Optional[str] = None, host: str = LOOPBACK,
                 max_queued_messages: int = MAX_QUEUED_MESSAGES) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0 (any free one) to 65535, not {port!r}")
        if max_queued_messages < 0:
            raise ValueError(f"max_queued_messages must be 0 (no limit) or more, "
                             f"not {max_queued_messages!r}")
        unknown = [b for b in backends if b not in BACKENDS]
        if unknown or not backends:
            raise ValueError(f"backends must be among {', '.join(BACKENDS)}, not {unknown}")
        self.requested_port = port
        """The port asked for (0: any free one)."""
        self.backends = tuple(backends)
        """The backends to try, in order."""
        self.mosquitto_path = mosquitto_path
        """The mosquitto binary (None: look for it)."""
        self.host = host
        """The listening address."""
        self.max_queued_messages = max_queued_messages
        """mosquitto: QoS 1 messages queued per client beyond those in flight (0: no limit)."""
        self.port: Optional[int] = None
        """The port it listens on, once started."""
        self.backend: Optional[str] = None
        """"mosquitto" or "amqtt", once started."""
        self._impl: Optional[_Backend] = None

    @property
    def url(self) -> str:
        """`mqtt://127.0.0.1:<port>` (only once started)."""
        if self.port is None:
            raise EmbeddedBrokerError("the embedded broker is not started")
        return f"mqtt://{self.host}:{self.port}"

    @property
    def mqtt_version(self) -> str:
        """The newest MQTT version the running backend speaks: "5" or "3.1.1"."""
        if self._impl is None:
            raise EmbeddedBrokerError("the embedded broker is not started")
        return str(self._impl.mqtt_version)

    @property
    def persistent_sessions(self) -> bool:
        """True when the running backend queues QoS 1 messages for an absent anonymous client
        with a persistent session (what `--mode periodic` and `adaptive` need)."""
        if self._impl is None:
            raise EmbeddedBrokerError("the embedded broker is not started")
        return bool(self._impl.persistent_sessions)

    def start(self) -> str:
        """Start the first available backend; returns the broker URL."""
        if self._impl is not None:
            return self.url
        factory = self._factory()
        ports: Callable[[], int] = (lambda: free_port(self.host)) if not self.requested_port \
            else (lambda: self.requested_port)
        attempts = PORT_ATTEMPTS if not self.requested_port else 1
        for _ in range(attempts):
            port = ports()
            if not port_free(self.host, port):
                # checked first: a broker already there would answer our readiness probe
                continue
            impl = factory()
            if impl.start(self.host, port):
                self._impl, self.port = impl, port
                _LOGGER.info("embedded %s broker on %s", self.backend, self.url)
                return self.url
            impl.stop()
        raise EmbeddedBrokerError(f"port {self.requested_port or port} on {self.host} is "
                                  "already in use (another broker running? pick another port)")

    def _factory(self) -> Callable[[], _Backend]:
        for backend in self.backends:
            if backend == MOSQUITTO:
                path = self.mosquitto_path or find_mosquitto()
                if path and os.access(path, os.X_OK):
                    self.backend = MOSQUITTO
                    return lambda: _Mosquitto(path, self.max_queued_messages)
            elif backend == AMQTT and amqtt_installed():
                self.backend = AMQTT
                return _Amqtt
        raise EmbeddedBrokerError(f"no MQTT broker to embed ({' or '.join(self.backends)} "
                                  f"wanted): {INSTALL_HINT}")

    @property
    def pid(self) -> Optional[int]:
        """The mosquitto child's process id (None for amqtt, or when not started)."""
        proc = getattr(self._impl, "proc", None)
        return proc.pid if proc is not None else None

    def alive(self) -> bool:
        """True while the broker runs."""
        return self._impl is not None and self._impl.alive()

    def stop(self) -> None:
        """Stop the broker and free its port (idempotent)."""
        impl, self._impl = self._impl, None
        if impl is not None:
            impl.stop()
            _LOGGER.info("embedded %s broker on port %s stopped", self.backend, self.port)
        self.port = None

    def __enter__(self) -> "EmbeddedBroker":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
