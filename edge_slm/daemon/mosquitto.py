"""mosquitto as a child process: the one launcher, used by `EmbeddedBroker` and the tests.

    broker = MosquittoProcess(folder, port=0).start()   # a free port; waits until it listens
    broker.url                                           # mqtt://127.0.0.1:<port>
    broker.stop(); broker.start()                        # again, on the same port

The config is generated into `folder` (mosquitto-<port>.conf, its log beside it): one listener
(loopback by default), anonymous clients unless a password file is given, persistence off
unless asked for, and `user` set to who we are (started as root, mosquitto would switch to its
own user, which can neither write our folder nor keep a parent-death signal). Readiness is a
successful TCP connection, never a sleep. Stdlib only.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import EdgeSlmError

_LOGGER = logging.getLogger(__name__)

MOSQUITTO = "mosquitto"
"""The binary's name."""
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
"""Where Debian and a source build put mosquitto (/usr/sbin is not on a user's PATH)."""
LOOPBACK = "127.0.0.1"
"""The default listening address: this machine alone."""
START_TIMEOUT_S = 10.0
"""Longest wait for the broker to accept connections (a Pi Zero on a slow SD card)."""
STOP_TIMEOUT_S = 5.0
"""Longest wait for the broker to exit after SIGTERM before it is killed."""
POLL_S = 0.05
"""Pause between two connection attempts while waiting for the broker to listen."""
CONNECT_PROBE_TIMEOUT_S = 0.2
"""Timeout of one such connection attempt."""
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class MosquittoError(EdgeSlmError):
    """mosquitto could not be started (it exited, or did not listen in time)."""


class PortInUse(MosquittoError):
    """mosquitto exited because its port is taken."""


def find_mosquitto() -> Optional[str]:
    """The mosquitto binary (PATH first, then MOSQUITTO_PATHS), or None."""
    found = shutil.which(MOSQUITTO)
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if os.access(p, os.X_OK)), None)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    """True when a server could listen on `port` now (SO_REUSEADDR, as brokers bind: the
    TIME_WAIT connections a stopped broker leaves do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen(1)
            return True
        except OSError:
            return False


def listening(host: str, port: int) -> bool:
    """True when something accepts TCP connections on `port`."""
    try:
        socket.create_connection((host, port), timeout=CONNECT_PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


def _user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to send the child SIGTERM when its parent exits."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass


class MosquittoProcess:
    """One mosquitto child process with a generated config (see module doc)."""

    def __init__(self, folder: Path, port: int = 0, host: str = LOOPBACK,
                 binary: Optional[str] = None, persistence: bool = False,
                 password_file: Optional[Path] = None,
                 max_queued_messages: Optional[int] = None,
                 log_types: Sequence[str] = (), die_with_parent: bool = False,
                 own_session: bool = False) -> None:
        self.folder = Path(folder)
        """Where the config, the log and (with persistence) mosquitto.db go."""
        self.host = host
        """The listening address."""
        self.port = port or free_port(host)
        """The listening port (port=0 picks a free one now)."""
        self.binary = binary or find_mosquitto() or MOSQUITTO_PATHS[0]
        """The mosquitto binary."""
        self.persistence = persistence
        """Save sessions and retained messages on stop and load them on start."""
        self.password_file = password_file
        """mosquitto password file: only its users may connect (None: anonymous clients)."""
        self.max_queued_messages = max_queued_messages
        """QoS 1 messages queued per client (0: no limit; None: mosquitto's default, 1000)."""
        self.log_types = tuple(log_types)
        """mosquitto `log_type`s ("error", "warning", ...; empty: mosquitto's default)."""
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        """Linux: the child gets SIGTERM when the thread that started it exits."""
        self.own_session = own_session
        """A session of its own: a Ctrl-C at the terminal does not reach it, so it outlives
        its parent's goodbye."""
        self.proc: Optional[subprocess.Popen] = None
        """The child process, once started."""
        self.conf_path = self.folder / f"mosquitto-{self.port}.conf"
        self.log_path = self.folder / f"mosquitto-{self.port}.log"

    @property
    def url(self) -> str:
        """`mqtt://<host>:<port>`."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> Optional[int]:
        """The child's process id (None before start)."""
        return self.proc.pid if self.proc is not None else None

    def config_lines(self) -> List[str]:
        """The generated mosquitto.conf, line by line."""
        lines = [f"listener {self.port} {self.host}", f"user {_user_name()}"]
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.folder}/"]
        else:
            lines.append("persistence false")
        if self.max_queued_messages is not None:
            lines.append(f"max_queued_messages {self.max_queued_messages}")
        lines.append("log_dest stderr")
        lines += [f"log_type {t}" for t in self.log_types]
        return lines

    def start(self) -> "MosquittoProcess":
        """Start it and wait until it accepts connections. PortInUse when the port is taken,
        MosquittoError when it exits or does not listen within START_TIMEOUT_S."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text("\n".join(self.config_lines()) + "\n")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf_path)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
                start_new_session=self.own_session)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = self.log_text().strip()
                if "in use" in text:
                    raise PortInUse(f"port {self.port} on {self.host} is already in use")
                raise MosquittoError(f"mosquitto exited with {self.proc.returncode}: {text}")
            if listening(self.host, self.port):
                return self
            try:
                self.proc.wait(timeout=POLL_S)  # notices an early exit at once
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        raise MosquittoError(f"mosquitto did not listen on {self.host}:{self.port} within "
                             f"{START_TIMEOUT_S:g} s: " + self.log_text().strip())

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S (idempotent)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _LOGGER.warning("mosquitto ignored SIGTERM; killing it")
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def alive(self) -> bool:
        """True while the child runs."""
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        """What mosquitto logged (for error messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
