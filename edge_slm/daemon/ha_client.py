"""Home Assistant's WebSocket API: authenticate, read the registries, follow their changes.

    home = read_home_assistant(url, token, timeout_s=10.0)   # once (edge-slm home show)
    follower = HomeAssistantFollower(url, token, live)       # edge-slm serve
    follower.start()          # a thread: read, swap into `live`, re-read on registry events
    follower.stop()

The documented exchange: the server says `auth_required`; we answer
`{"type": "auth", "access_token": ...}`; it says `auth_ok` (or `auth_invalid`: HaAuthError).
Then commands carry increasing ids and are answered by `{"id", "type": "result", "success",
"result" | "error"}`; `subscribe_events` (event types `area_registry_updated`,
`floor_registry_updated`, `device_registry_updated`, `entity_registry_updated`) makes the
server send `{"id", "type": "event", "event": {...}}` on each change. The follower subscribes
before it reads, so no change between the two is missed; after an event it waits
REFRESH_SETTLE_S for the rest of a burst, then reads everything again (`ha_home.py` maps it) and
hands the home to `LiveHome`, which swaps it into the engine only when it changed. When Home
Assistant goes away (or stops answering our pings) the follower reconnects with backoff, and
the daemon keeps answering for the last home it had. The token is never logged (the log
filter masks it: `home_sources.read_ha_token`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, Dict, Optional

from ..errors import EdgeSlmError
from .backoff import Backoff
from .ha_home import HaRegistries, exposed_ids, home_from_registries
from .live_home import LiveHome, SourceHome
from .redact import redact_url
from .websocket import WebSocket, WebSocketError, connect

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
"""Longest wait for the connection, the handshake and the authentication."""
REQUEST_TIMEOUT_S = 30.0
"""Longest wait for the answer to one command (get_states of a large home takes a while)."""
KEEPALIVE_S = 30.0
"""After this long without a message, the follower pings Home Assistant."""
REFRESH_SETTLE_S = 1.0
"""After a registry event, how long more events may come before everything is read again."""
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
"""Largest message taken from Home Assistant (get_states of a home with thousands of
entities is a few MiB)."""
INBOX_MESSAGES = 64
"""Messages read ahead of the session (the reader waits when they are not taken)."""
REGISTRY_EVENTS = ("area_registry_updated", "floor_registry_updated",
                   "device_registry_updated", "entity_registry_updated")
"""The events after which the home is read again."""


class HaError(EdgeSlmError):
    """Home Assistant refused a command or broke its protocol."""


class HaAuthError(HaError):
    """Home Assistant refused the access token."""


class HaUnknownCommand(HaError):
    """Home Assistant does not know a command (an older version)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"Home Assistant does not know {kind} (too old?)")


class HaSession:
    """One authenticated connection: commands answered in order, events counted."""

    def __init__(self, ws: WebSocket, url: str) -> None:
        self.ws = ws
        self.url = url
        self.version: Optional[str] = None
        """Home Assistant's version (from auth_required)."""
        self.events = 0
        """Events received (while waiting for answers too) and not yet taken by
        `wait_event`."""
        self._next_id = 1
        self._inbox: "asyncio.Queue[Any]" = asyncio.Queue(INBOX_MESSAGES)
        self._reader: Optional["asyncio.Task[None]"] = None

    @classmethod
    async def open(cls, url: str, token: str,
                   timeout_s: float = CONNECT_TIMEOUT_S) -> "HaSession":
        """Connect and authenticate (HaAuthError for a refused token, HaError or
        WebSocketError for the rest)."""
        ws = await connect(url, timeout_s, MAX_MESSAGE_BYTES)
        session = cls(ws, url)
        try:
            hello = await session._next(timeout_s)
            if hello.get("type") != "auth_required":
                raise HaError(f"{redact_url(url)} is no Home Assistant WebSocket API (it said "
                              f"{str(hello.get('type'))[:40]!r} first)")
            session.version = str(hello.get("ha_version"))
            await ws.send_text(json.dumps({"type": "auth", "access_token": token}))
            answer = await session._next(timeout_s)
            if answer.get("type") == "auth_invalid":
                raise HaAuthError(
                    f"Home Assistant at {redact_url(url)} refused the access token "
                    f"({str(answer.get('message'))[:100]}): make a long-lived access token "
                    "on your Home Assistant profile page (Security tab), as an administrator")
            if answer.get("type") != "auth_ok":
                raise HaError(f"unexpected answer to auth: {str(answer.get('type'))[:40]!r}")
        except BaseException:
            await session.close()
            raise
        return session

    async def call(self, kind: str, timeout_s: float = REQUEST_TIMEOUT_S,
                   **fields: Any) -> Any:
        """Send command `kind` and return its result (HaError when it fails)."""
        msg_id = self._next_id
        self._next_id += 1
        await self.ws.send_text(json.dumps({"id": msg_id, "type": kind, **fields}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            msg = await self._next(deadline - loop.time())
            if msg.get("type") == "event":
                self.events += 1
                continue
            if msg.get("id") != msg_id:
                continue  # the late answer of a command that timed out
            if msg.get("type") == "pong":
                return None
            if msg.get("type") != "result":
                raise HaError(f"{kind}: unexpected answer {str(msg.get('type'))[:40]!r}")
            if msg.get("success") is not True:
                error = msg.get("error")
                error = error if isinstance(error, dict) else {}
                code = str(error.get("code"))[:40]
                if code == "unknown_command":
                    raise HaUnknownCommand(kind)
                hint = (" (the token's user must be an administrator)"
                        if code == "unauthorized" else "")
                raise HaError(f"Home Assistant refused {kind}: {code}: "
                              f"{str(error.get('message'))[:200]}{hint}")
            return msg.get("result")

    async def wait_event(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for an event (True: one came, or had come; taken)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.events:
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                msg = await self._next(left)
            except asyncio.TimeoutError:
                return False
            if msg.get("type") == "event":
                self.events += 1
        self.events = 0
        return True

    async def close(self) -> None:
        """Close the connection (never raises)."""
        if self._reader is not None:
            self._reader.cancel()
        await self.ws.close()

    async def _next(self, timeout_s: float) -> Dict[str, Any]:
        """The next message; TimeoutError when none comes in time, WebSocketError (or
        HaError) when the connection ends or breaks."""
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())
        item = await asyncio.wait_for(self._inbox.get(), max(timeout_s, 0.0))
        if isinstance(item, BaseException):
            self._inbox.put_nowait(item)  # every later read fails the same way
            raise item
        return item

    async def _read(self) -> None:
        """The one reader of the socket: messages (a JSON array is several) into the inbox."""
        try:
            while True:
                text = await self.ws.receive_text()
                try:
                    data = json.loads(text)
                except (ValueError, RecursionError):
                    raise HaError("Home Assistant sent a message that is not JSON") from None
                for msg in data if isinstance(data, list) else [data]:
                    if not isinstance(msg, dict):
                        raise HaError("Home Assistant sent a message that is not an object")
                    await self._inbox.put(msg)
        except (WebSocketError, HaError) as err:
            await self._inbox.put(err)


async def read_registries(session: HaSession) -> HaRegistries:
    """Everything `ha_home.home_from_registries` needs, read now."""
    try:
        floors = await session.call("config/floor_registry/list")
    except HaUnknownCommand:  # Home Assistant before 2024.4 had no floors
        floors = []
    exposed = await session.call("homeassistant/expose_entity/list")
    ids = exposed_ids(exposed)
    return HaRegistries(
        areas=await session.call("config/area_registry/list"), floors=floors,
        devices=await session.call("config/device_registry/list"),
        entities=await session.call("config/entity_registry/list"),
        states=await session.call("get_states"), exposed=exposed,
        extended=(await session.call("config/entity_registry/get_entries", entity_ids=ids)
                  if ids else {}))


def read_home_assistant(url: str, token: str,
                        timeout_s: float = CONNECT_TIMEOUT_S + REQUEST_TIMEOUT_S) -> SourceHome:
    """Connect once, read the home, disconnect (HaError, WebSocketError: EdgeSlmErrors)."""
    async def run() -> SourceHome:
        session = await HaSession.open(url, token, min(timeout_s, CONNECT_TIMEOUT_S))
        try:
            return home_from_registries(await read_registries(session))
        finally:
            await session.close()

    async def bounded() -> SourceHome:
        try:
            return await asyncio.wait_for(run(), timeout_s)
        except asyncio.TimeoutError:
            raise HaError(f"Home Assistant at {redact_url(url)} did not answer within "
                          f"{timeout_s:g} s") from None

    return asyncio.run(bounded())


class HomeAssistantFollower:
    """Keeps `live`'s Home Assistant home current, in a thread of its own (see module doc)."""

    def __init__(self, url: str, token: str, live: LiveHome,
                 backoff: Optional[Backoff] = None, keepalive_s: float = KEEPALIVE_S,
                 settle_s: float = REFRESH_SETTLE_S) -> None:
        self.url = url
        self.live = live
        self.backoff = backoff or Backoff()
        """Delays between connection attempts."""
        self.keepalive_s = keepalive_s
        """Idle time before a ping."""
        self.settle_s = settle_s
        """Wait after an event before reading again."""
        self.connected = threading.Event()
        """Set while connected and subscribed."""
        self.reads = 0
        """Times the home was read."""
        self.connections = 0
        """Successful connections (a reconnect adds one)."""
        self.last_error: Optional[str] = None
        """Why the last connection ended or failed (None: none has)."""
        self._token = token
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._started = threading.Event()

    def start(self) -> None:
        """Run in a daemon thread until stop()."""
        self._thread = threading.Thread(target=self._thread_main, name="edge-slm-ha",
                                        daemon=True)
        self._thread.start()
        self._started.wait()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Disconnect and end the thread (waits up to `timeout_s`)."""
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _thread_main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            self._started.set()
            await self.run()

        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass
        finally:
            self._started.set()

    async def run(self) -> None:
        """Follow Home Assistant until cancelled."""
        while True:
            try:
                await self._follow()
            except HaAuthError as err:
                self.last_error = str(err)
                _LOGGER.error("%s", err)
            except (EdgeSlmError, OSError, asyncio.TimeoutError) as err:
                self.last_error = str(err) or type(err).__name__
                _LOGGER.warning("Home Assistant at %s: %s", redact_url(self.url),
                                self.last_error)
            except asyncio.CancelledError:
                raise
            except Exception:  # the thread's boundary: log, keep the daemon serving
                self.last_error = "internal error"
                _LOGGER.exception("following Home Assistant failed")
            finally:
                self.connected.clear()
            delay = self.backoff.next()
            _LOGGER.warning("reconnecting to Home Assistant in %.1f s (answering for the last "
                            "home meanwhile)", delay)
            await asyncio.sleep(delay)

    async def _follow(self) -> None:
        session = await HaSession.open(self.url, self._token)
        try:
            for event in REGISTRY_EVENTS:
                await session.call("subscribe_events", event_type=event)
            self.connections += 1
            self.backoff.reset()
            self.connected.set()
            _LOGGER.info("following Home Assistant %s at %s", session.version,
                         redact_url(self.url))
            await self._refresh(session)
            while True:
                if await session.wait_event(self.keepalive_s):
                    while await session.wait_event(self.settle_s):
                        pass  # the rest of a burst of changes
                    await self._refresh(session)
                else:
                    await session.call("ping", timeout_s=self.keepalive_s)
        finally:
            await session.close()

    async def _refresh(self, session: HaSession) -> None:
        home = home_from_registries(await read_registries(session))
        self.reads += 1
        self.live.update(home)
