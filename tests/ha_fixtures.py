"""Home Assistant for the tests: registry payloads shaped exactly as its WebSocket API sends
them, and a WebSocket server on loopback that speaks its documented messages.

    from ha_fixtures import HomeAssistantServer, registries
    with HomeAssistantServer(token="t0k3n") as ha:    # ws://127.0.0.1:<port>/api/websocket
        ha.url
        ha.change(lambda r: r["states"].append(...), "entity_registry_updated")  # + event
        ha.restart()                                  # every client is dropped, then back

The server is the `websockets` library (an RFC 6455 implementation of its own, so our client
is tested against somebody else's framing), in a thread with its own event loop. It answers
`auth_required` -> `auth` -> `auth_ok` / `auth_invalid`, commands by id (`result` messages,
`unknown_command` for the rest), `ping` with `pong`, and after `change(...)` sends an `event`
message to every subscription of that event type. Nothing here sleeps for timing.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

HA_VERSION = "2025.10.1"
T = 1717171717.123  # a registry timestamp (seconds, as Home Assistant sends them)


def _entry(entity_id: str, device_id: Optional[str] = None, area_id: Optional[str] = None,
           name: Optional[str] = None, original_name: Optional[str] = None,
           has_entity_name: bool = False, disabled_by: Optional[str] = None,
           platform: str = "mqtt") -> Dict[str, Any]:
    """One config/entity_registry/list element (RegistryEntry.as_partial_dict)."""
    return {"area_id": area_id, "categories": {}, "config_entry_id": "01JCONFIGENTRY0000000000",
            "config_subentry_id": None, "created_at": T, "device_id": device_id,
            "disabled_by": disabled_by, "entity_category": None, "entity_id": entity_id,
            "has_entity_name": has_entity_name, "hidden_by": None, "icon": None,
            "id": "e" + entity_id.replace(".", "_"), "labels": [], "modified_at": T,
            "name": name, "options": {"conversation": {"should_expose": True}},
            "original_name": original_name, "platform": platform, "translation_key": None,
            "unique_id": "u_" + entity_id}


def _extended(entry: Dict[str, Any], aliases: Sequence[Any] = (),
              device_class: Optional[str] = None,
              original_device_class: Optional[str] = None) -> Dict[str, Any]:
    """One config/entity_registry/get_entries value (RegistryEntry.extended_dict)."""
    return {**entry, "aliases": list(aliases), "capabilities": None,
            "device_class": device_class, "original_device_class": original_device_class,
            "original_icon": None}


def _state(entity_id: str, state: str, **attributes: Any) -> Dict[str, Any]:
    """One get_states element."""
    ctx = {"id": "01JCONTEXT00000000000000", "parent_id": None, "user_id": None}
    return {"entity_id": entity_id, "state": state, "attributes": attributes,
            "last_changed": "2025-10-01T10:00:00.000000+00:00",
            "last_reported": "2025-10-01T10:00:00.000000+00:00",
            "last_updated": "2025-10-01T10:00:00.000000+00:00", "context": ctx}


def device(device_id: str, name: str, area_id: Optional[str],
           name_by_user: Optional[str] = None) -> Dict[str, Any]:
    """One config/device_registry/list element (DeviceEntry.dict_repr)."""
    return {"area_id": area_id, "configuration_url": None,
            "config_entries": ["01JCONFIGENTRY0000000000"],
            "config_entries_subentries": {"01JCONFIGENTRY0000000000": [None]},
            "connections": [], "created_at": T, "disabled_by": None, "entry_type": None,
            "hw_version": None, "id": device_id, "identifiers": [["mqtt", device_id]],
            "labels": [], "manufacturer": "IKEA of Sweden", "model": "TRADFRI bulb E27",
            "model_id": "LED1836G9", "modified_at": T, "name_by_user": name_by_user,
            "name": name, "primary_config_entry": "01JCONFIGENTRY0000000000",
            "serial_number": None, "sw_version": "2.3.093", "via_device_id": None}


def registries() -> Dict[str, Any]:
    """A small home, as each command's `result`: two floors, four areas, devices, entities
    (some exposed to Assist, some not, one disabled, one of a domain no intent names)."""
    lamp = _entry("light.desk_lamp", device_id="dev_desk_lamp", has_entity_name=True)
    ceiling = _entry("light.kitchen_ceiling", area_id="kitchen", original_name="Ceiling")
    garage = _entry("cover.garage_door", platform="ratgdo")
    front = _entry("lock.front_door", area_id="hall", platform="zwave_js")
    coffee = _entry("switch.coffee_maker", area_id="kitchen")
    motion = _entry("binary_sensor.hall_motion", area_id="hall", platform="zha")
    broken = _entry("light.old_lamp", disabled_by="user")
    unnamed = _entry("light.porch", device_id="dev_porch", has_entity_name=True,
                     original_name=None)
    return {
        "config/floor_registry/list": [
            {"aliases": ["downstairs"], "created_at": T, "floor_id": "ground_floor",
             "icon": "mdi:home-floor-0", "level": 0, "modified_at": T, "name": "Ground Floor"},
            {"aliases": [], "created_at": T, "floor_id": "first_floor", "icon": None,
             "level": 1, "modified_at": T, "name": "First Floor"}],
        "config/area_registry/list": [
            {"aliases": ["lounge"], "area_id": "living_room", "created_at": T,
             "floor_id": "ground_floor", "humidity_entity_id": None, "icon": "mdi:sofa",
             "labels": [], "modified_at": T, "name": "Living Room", "picture": None,
             "temperature_entity_id": None},
            {"aliases": [], "area_id": "kitchen", "created_at": T, "floor_id": "ground_floor",
             "humidity_entity_id": None, "icon": None, "labels": [], "modified_at": T,
             "name": "Kitchen", "picture": None, "temperature_entity_id": None},
            {"aliases": [], "area_id": "hall", "created_at": T, "floor_id": None,
             "humidity_entity_id": None, "icon": None, "labels": [], "modified_at": T,
             "name": "Hall", "picture": None, "temperature_entity_id": None},
            {"aliases": ["office"], "area_id": "study", "created_at": T,
             "floor_id": "first_floor", "humidity_entity_id": None, "icon": None, "labels": [],
             "modified_at": T, "name": "Study", "picture": None,
             "temperature_entity_id": None}],
        "config/device_registry/list": [
            device("dev_desk_lamp", "0x00158d0001a2b3c4", "study", name_by_user="Desk Lamp"),
            device("dev_porch", "Porch Light", "hall")],
        "config/entity_registry/list": [lamp, ceiling, garage, front, coffee, motion, broken,
                                        unnamed],
        "get_states": [
            _state("light.desk_lamp", "off", friendly_name="Desk Lamp",
                   supported_color_modes=["brightness"], color_mode=None, brightness=None,
                   supported_features=40),
            _state("light.kitchen_ceiling", "on", friendly_name="Kitchen Ceiling",
                   brightness=255, supported_features=0),
            _state("cover.garage_door", "closed", friendly_name="Garage Door",
                   device_class="garage", supported_features=3),
            _state("lock.front_door", "locked", friendly_name="Front Door"),
            _state("switch.coffee_maker", "off", friendly_name="Coffee Maker"),
            _state("binary_sensor.hall_motion", "off", friendly_name="Hall Motion",
                   device_class="motion"),
            _state("sun.sun", "above_horizon", friendly_name="Sun", elevation=30.1),
            _state("light.porch", "unavailable", restored=True)],
        "homeassistant/expose_entity/list": {"exposed_entities": {
            "light.desk_lamp": {"conversation": True, "cloud.alexa": False},
            "light.kitchen_ceiling": {"conversation": True},
            "cover.garage_door": {"conversation": True},
            "lock.front_door": {"conversation": True, "cloud.google_assistant": True},
            "switch.coffee_maker": {"conversation": False},
            "binary_sensor.hall_motion": {"conversation": True},
            "sun.sun": {"conversation": True},
            "light.old_lamp": {"conversation": True},
            "light.porch": {"conversation": True},
            "sensor.cpu_temperature": {}}},
        "extended": {
            "light.desk_lamp": _extended(lamp, aliases=["reading light", None]),
            "light.kitchen_ceiling": _extended(ceiling, aliases=["kitchen light"]),
            "cover.garage_door": _extended(garage, original_device_class="garage"),
            "lock.front_door": _extended(front),
            "switch.coffee_maker": _extended(coffee),
            "binary_sensor.hall_motion": _extended(motion, device_class="motion"),
            "light.old_lamp": _extended(broken), "light.porch": _extended(unnamed)},
    }


def add_exposed_light(reg: Dict[str, Any], entity_id: str, name: str, area_id: str,
                      aliases: Tuple[str, ...] = ()) -> None:
    """Register, expose and give a state to a new light (what a user adding one does)."""
    entry = _entry(entity_id, area_id=area_id)
    reg["config/entity_registry/list"].append(entry)
    reg["get_states"].append(_state(entity_id, "off", friendly_name=name))
    reg["homeassistant/expose_entity/list"]["exposed_entities"][entity_id] = {
        "conversation": True}
    reg["extended"][entity_id] = _extended(entry, aliases=list(aliases))


class HomeAssistantServer:
    """Home Assistant's WebSocket API on a loopback port (see the module doc)."""

    def __init__(self, token: str, data: Optional[Dict[str, Any]] = None) -> None:
        self.token = token
        self.data = data if data is not None else registries()
        self.received: List[Dict[str, Any]] = []
        """Every message clients sent (auth included)."""
        self.port = 0
        self._subs: List[Tuple[ServerConnection, int, str]] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/websocket"

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> "HomeAssistantServer":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._call(self._stop())
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def restart(self) -> None:
        """Home Assistant going away (every connection closed, the port closed) and coming
        back on the same port."""
        self._call(self._stop())
        self._call(self._start())

    def change(self, edit: Callable[[Dict[str, Any]], None], event_type: str) -> None:
        """Edit the registries, then send `event_type` to its subscribers."""
        with self._lock:
            edit(self.data)
        self._call(self._fire(event_type))

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", self.port or 0,
                                   compression=None, ping_interval=None)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        self._subs.clear()

    async def _fire(self, event_type: str) -> None:
        for conn, sub_id, kind in list(self._subs):
            if kind == event_type:
                event = {"event_type": event_type, "data": {"action": "update"},
                         "origin": "LOCAL", "time_fired": "2025-10-01T10:00:01.000000+00:00",
                         "context": {"id": "01JEVENT", "parent_id": None, "user_id": None}}
                try:
                    await conn.send(json.dumps({"id": sub_id, "type": "event", "event": event}))
                except ConnectionClosed:
                    pass

    # -- one client ----------------------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        await conn.send(json.dumps({"type": "auth_required", "ha_version": HA_VERSION}))
        try:
            auth = json.loads(await conn.recv())
            self.received.append(auth)
            if auth.get("type") != "auth" or auth.get("access_token") != self.token:
                await conn.send(json.dumps({"type": "auth_invalid",
                                            "message": "Invalid access token or password"}))
                await conn.close()
                return
            await conn.send(json.dumps({"type": "auth_ok", "ha_version": HA_VERSION}))
            async for text in conn:
                msg = json.loads(text)
                self.received.append(msg)
                await conn.send(json.dumps(self._answer(conn, msg)))
        except ConnectionClosed:
            pass

    def _answer(self, conn: ServerConnection, msg: Dict[str, Any]) -> Dict[str, Any]:
        kind, msg_id = msg.get("type"), msg.get("id")
        if kind == "ping":
            return {"id": msg_id, "type": "pong"}
        if kind == "subscribe_events":
            self._subs.append((conn, msg_id, msg.get("event_type")))
            return {"id": msg_id, "type": "result", "success": True, "result": None}
        with self._lock:
            if kind == "config/entity_registry/get_entries":
                result: Any = {e: self.data["extended"].get(e) for e in msg["entity_ids"]}
            elif kind in self.data and kind != "extended":
                result = copy.deepcopy(self.data[kind])
            else:
                return {"id": msg_id, "type": "result", "success": False,
                        "error": {"code": "unknown_command", "message": "Unknown command."}}
        return {"id": msg_id, "type": "result", "success": True, "result": result}
