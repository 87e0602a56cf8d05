"""The MQTT I/O layer: paho-mqtt 2 in, `Handler` in the middle, paho-mqtt 2 out.

    daemon = MqttDaemon(Handler(engine, config), config)
    daemon.run_forever()          # always-on: until stop() (a signal handler may call it)
    daemon.step(window_s=5.0)     # one duty cycle: connect, serve queued queries, disconnect
    daemon.request_reload()       # from a SIGHUP handler: reload the bundle in the loop

It subscribes at the configured QoS to `hermes/nlu/query` and `edge-slm/<site>/query`,
publishes whatever the handler returns (on the MQTT 5 Response Topic with the Correlation Data
when a native query gives them), keeps a persistent session (MQTT 5: clean start off and a
session expiry; 3.1.1: clean session off) under a stable client id, leaves a retained
`offline` last will on `edge-slm/<site>/status` and publishes a retained `online` status once
its subscriptions are acknowledged. Lost connections are retried with capped exponential
backoff and jitter. A message that breaks the handler is logged and answered with an error;
it never stops the daemon. Neither does a huge one: the client (`packets.BoundedClient`) skips
a PUBLISH over `max_packet_bytes` unread, and it is answered with an error too.

With a share group, the subscriptions are MQTT 5 shared ones (`$share/<group>/<topic>`): the
broker gives each query to one daemon of the group. `request_reload()` only sets a flag; the
loop (run_forever's next pass, or the next step) calls the injected loader, swaps the new
engine into the handler and republishes the status. A loader that fails leaves the old
engine serving. With a home feed (`mqtt_home.py`), discovery and Zigbee2MQTT topics are
subscribed on this connection too and their messages go to the feed, not the handler.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

from paho.mqtt.client import (MQTT_ERR_SUCCESS, Client, ConnectFlags, DisconnectFlags, MQTTMessage,
                              MQTTMessageInfo)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ..errors import ConfigError
from ..protocols.base import topic_level
from ..runtime.engine import IntentEngine
from . import DaemonConfig
from .backoff import Backoff
from .client import connect, make_client
from .discovery import DiagnosticsTracker, discovery_messages
from .handlers import CORRELATION_DATA, RESPONSE_TOPIC, Handler, Outgoing
from .live_home import LiveHome
from .mqtt_home import MqttHomeFeed
from .packets import take_oversized

_LOGGER = logging.getLogger(__name__)

LOOP_TIMEOUT_S = 0.5
"""Longest wait for network traffic in one loop pass; bounds how late stop() is noticed."""
FLUSH_TIMEOUT_S = 5.0
"""On stop or at the end of a step: longest wait for our QoS 1 publishes to be acknowledged."""
SHARE_PREFIX = "$share"
"""MQTT 5 shared subscriptions: `$share/<group>/<topic filter>`."""
_PAHO_LOGGER = logging.getLogger(__name__ + ".paho")


def shared_topic(group: Optional[str], topic: str) -> str:
    """`topic` as a subscription of the share group (unchanged without a group)."""
    if group is None:
        return topic
    return f"{SHARE_PREFIX}/{topic_level(group, 'share group')}/{topic}"


def publish_properties(props: Mapping[str, Any]) -> Optional[Properties]:
    """MQTT 5 PUBLISH properties from {"CorrelationData": ..., ...}; None when there are none."""
    if not props:
        return None
    out = Properties(PacketTypes.PUBLISH)
    for name, value in props.items():
        setattr(out, name, value)
    return out


def received_properties(msg: MQTTMessage) -> Dict[str, Any]:
    """The request/response properties of a received message ({} under MQTT 3.1.1)."""
    props = getattr(msg, "properties", None)
    if props is None:
        return {}
    out: Dict[str, Any] = {}
    for name in (RESPONSE_TOPIC, CORRELATION_DATA):
        value = getattr(props, name, None)
        if value is not None:
            out[name] = value
    return out


class MqttDaemon:
    """The handler on a broker (see module doc). Not thread-safe except `stop()`."""

    def __init__(self, handler: Handler, config: DaemonConfig,
                 backoff: Optional[Backoff] = None,
                 clock: Callable[[], float] = time.monotonic,
                 share_group: Optional[str] = None,
                 reload: Optional[Callable[[], IntentEngine]] = None,
                 home_feed: Optional[MqttHomeFeed] = None,
                 live_home: Optional[LiveHome] = None) -> None:
        if share_group is not None:
            shared_topic(share_group, "check")  # ConfigError for a bad group name
            if config.mqtt_version != "5":
                raise ConfigError("shared subscriptions need MQTT 5")
        self.handler = handler
        self.config = config
        self.share_group = share_group
        """MQTT 5 shared-subscription group (None: every query comes to us)."""
        self.reload = reload
        """Makes a new, checked engine from the bundle on disk (None: reloading refused)."""
        self.reload_requested = False
        """Set by request_reload() (a plain flag: safe in a signal handler)."""
        self.backoff = backoff or Backoff()
        """Reconnect delays."""
        self.clock = clock
        """Monotonic seconds, for windows and flush deadlines."""
        self.client: Optional[Client] = None
        """The paho client, made by setup()."""
        self.ready = threading.Event()
        """Set while connected with our subscriptions acknowledged and the `online` status
        handed to the client to send (not yet known to be at the broker)."""
        self.diagnostics = (DiagnosticsTracker(started_at=time.time())
                            if config.discovery_prefix else None)
        """Last intent, latency and load for Home Assistant (None: discovery off)."""
        self.duty_cycle: Callable[[], float] = lambda: 1.0
        """The duty cycle reported to Home Assistant (the duty loop sets it)."""
        self.handled = 0
        """Messages received and handled (errors included)."""
        self.home_feed = home_feed
        """Names from the broker (discovery configs, Zigbee2MQTT): its topics are subscribed
        to on this connection, never shared, and its messages go to it, not the handler."""
        self.live_home = live_home
        """The merged home, whose counts the diagnostics report (None: not reported)."""
        self._home_mid: Optional[int] = None
        self._stop = threading.Event()
        self._open = False  # a socket is open (CONNACK may still be pending)
        self._sub_mid: Optional[int] = None
        self._pending: Dict[int, MQTTMessageInfo] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def setup(self) -> None:
        """Make the paho client: protocol, client id, session, last will, TLS, credentials."""
        client = make_client(self.config.connection())
        client.enable_logger(_PAHO_LOGGER)
        will = self.handler.status(online=False)
        client.will_set(will.topic, will.payload, qos=will.qos, retain=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client

    def connect(self) -> bool:
        """Open the connection (CONNACK arrives in a later loop pass); False when the broker
        cannot be reached."""
        if self.client is None:
            self.setup()
        assert self.client is not None
        address = self.config.address
        try:
            connect(self.client, self.config.connection())
        except OSError as err:  # refused, unreachable, TLS handshake failed
            _LOGGER.warning("cannot reach broker %s:%s: %s", address.host, address.port, err)
            return False
        self._open = True
        return True

    def run_forever(self) -> None:
        """Serve until stop(), reconnecting with backoff; publish `offline` on the way out."""
        self._stop.clear()
        try:
            while not self._stop.is_set():
                if self.reload_requested:
                    self.reload_now()
                if not self._open:
                    if not self.connect():
                        self._stop.wait(self.backoff.next())
                        continue
                assert self.client is not None
                rc = self.client.loop(timeout=LOOP_TIMEOUT_S)
                self._flush_home()
                self._publish_diagnostics()
                if rc != MQTT_ERR_SUCCESS and not self._stop.is_set():
                    self._lost()
                    delay = self.backoff.next()
                    _LOGGER.warning("connection lost (%s); retrying in %.1f s", rc, delay)
                    self._stop.wait(delay)
        finally:
            self.close()

    def step(self, window_s: float) -> int:
        """One duty cycle: connect, serve what arrives (queued queries first) for `window_s`
        seconds, flush the replies, disconnect. Returns how many messages were handled."""
        before = self.handled
        if self.reload_requested:  # before connecting: the online status names the new model
            self.reload_now()
        if not self.connect():
            return 0
        assert self.client is not None
        end = self.clock() + window_s
        while not self._stop.is_set():
            left = end - self.clock()
            if left <= 0:
                break
            rc = self.client.loop(timeout=min(LOOP_TIMEOUT_S, left))
            self._flush_home()
            if rc != MQTT_ERR_SUCCESS:
                self._lost()
                break
        self._flush_home(force=True)  # what came in this wake counts before it sleeps
        if self._open:
            self._publish_diagnostics()
            self._flush()
            self.client.disconnect()
        self._lost()
        return self.handled - before

    def stop(self) -> None:
        """Ask run_forever() to return (safe from another thread or a signal handler)."""
        self._stop.set()

    def request_reload(self) -> None:
        """Ask the loop to reload the bundle (safe from a signal handler: sets a flag only).
        Noticed within LOOP_TIMEOUT_S while connected, else at the next connection attempt
        or step."""
        self.reload_requested = True

    def subscriptions(self) -> List[str]:
        """The topic filters we subscribe to (shared ones with a share group)."""
        return [shared_topic(self.share_group, t) for t in self.handler.subscriptions()]

    def reload_now(self) -> bool:
        """Load, check and swap in a new engine (the daemon's thread only); republish the
        status when connected. False, with the old engine still serving, when it fails."""
        self.reload_requested = False
        if not self.handler.source.reload(self.reload):
            return False
        if self.client is not None and self.ready.is_set():
            self._publish(self.handler.status(online=True))
        return True

    def close(self) -> None:
        """Publish the retained `offline` status and disconnect cleanly (no last will)."""
        if self.client is None or not self._open:
            return
        if self.client.is_connected():
            self._publish(self.handler.status(online=False))
            self._flush()
        props = None
        if self.share_group is not None:
            # A share group's broker keeps handing a stopped member's session its share of
            # the queries; ending the session now gives them to the members still running.
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self._lost()

    # -- paho callbacks --------------------------------------------------------------------

    def _on_connect(self, client: Client, userdata: object, flags: ConnectFlags,
                    reason: ReasonCode, properties: Optional[Properties]) -> None:
        if reason.is_failure:
            _LOGGER.error("broker refused the connection: %s", reason)
            return
        self.backoff.reset()
        _LOGGER.info("connected to %s (session present: %s)", self.config.safe_broker,
                     getattr(flags, "session_present", None))
        topics = [(t, self.config.qos) for t in self.subscriptions()]
        _, self._sub_mid = client.subscribe(topics)
        if self.home_feed is not None:  # its own SUBSCRIBE: a refusal there only warns
            _, self._home_mid = client.subscribe([(t, 1) for t in self.home_feed.topics()])

    def _on_subscribe(self, client: Client, userdata: object, mid: int,
                      reasons: List[ReasonCode], properties: Optional[Properties]) -> None:
        refused = [r for r in reasons if r.is_failure]
        if mid == self._home_mid and refused:
            _LOGGER.warning("broker refused the home's topics: %s", refused)
        if mid != self._sub_mid:
            return
        if refused:
            _LOGGER.error("broker refused subscriptions: %s", refused)
            return
        self._publish(self.handler.status(online=True))
        if self.config.discovery_prefix:
            for item in discovery_messages(self.config.status_topic_site,
                                           prefix=self.config.discovery_prefix,
                                           qos=self.config.qos):
                self._publish(item)
        self.ready.set()

    def _on_disconnect(self, client: Client, userdata: object, flags: DisconnectFlags,
                       reason: Optional[ReasonCode], properties: Optional[Properties]) -> None:
        self.ready.clear()
        if reason is not None and getattr(reason, "is_failure", False):
            _LOGGER.warning("disconnected: %s", reason)

    def _on_publish(self, client: Client, userdata: object, mid: int, reason: ReasonCode,
                    properties: Properties) -> None:
        self._pending.pop(mid, None)

    def _on_message(self, client: Client, userdata: object, msg: MQTTMessage) -> None:
        if self.home_feed is not None and self.home_feed.wants(msg.topic):
            try:
                self.home_feed.receive(msg.topic, bytes(msg.payload), take_oversized(client, msg))
            except Exception:  # the callback boundary: the old home keeps answering
                _LOGGER.exception("reading the home from %s failed", msg.topic)
            return
        self.handled += 1
        props = received_properties(msg)
        payload = bytes(msg.payload)  # paho types it bytes | bytearray
        t0 = self.clock()
        out: List[Outgoing] = []
        size = take_oversized(client, msg)  # skipped unread (packets.py): answered as such
        try:
            out = (self.handler.handle(msg.topic, payload, props) if size is None else
                   self.handler.error_reply(msg.topic, b"", props, self._too_large(size)))
        except Exception as err:  # the callback boundary: log, answer, keep serving
            _LOGGER.exception("handling a message on %s failed", msg.topic)
            try:
                out = self.handler.error_reply(msg.topic, payload, props,
                                               f"internal error: {type(err).__name__}")
            except Exception:
                _LOGGER.exception("answering the failed message failed too")
                out = []
        if self.diagnostics is not None:
            self.diagnostics.record(out, (self.clock() - t0) * 1000.0)
        for item in out:
            self._publish(item)

    def _too_large(self, size: int) -> str:
        _LOGGER.warning("dropped a message of %d bytes unread", size)
        return f"message too large ({size} bytes; at most {self.config.max_packet_bytes})"

    def _flush_home(self, force: bool = False) -> None:
        """Hand what the broker said of the home to the engine, once a burst has settled."""
        if self.home_feed is not None:
            try:
                self.home_feed.flush(force)
            except Exception:  # the loop's boundary: the old home keeps answering
                _LOGGER.exception("updating the home from the broker failed")

    def _publish_diagnostics(self) -> None:
        """The retained diagnostics for Home Assistant, when due (at most every 10 s)."""
        now = time.time()
        if self.diagnostics is not None and self.live_home is not None:
            self.diagnostics.set_home(self.live_home.summary())
        if self.diagnostics is not None and self._open and self.diagnostics.due(now):
            self._publish(self.diagnostics.message(self.config.status_topic_site, now,
                                                   self.duty_cycle(), self.config.qos))

    # -- helpers ---------------------------------------------------------------------------

    def _publish(self, item: Outgoing) -> None:
        assert self.client is not None
        props = publish_properties(item.properties) if self.config.mqtt_version == "5" else None
        try:
            info = self.client.publish(item.topic, item.payload, item.qos, item.retain,
                                       properties=props)
        except (ValueError, TypeError) as err:  # a topic or payload paho will not send
            _LOGGER.error("cannot publish on %r: %s", item.topic, err)
            return
        # acknowledged ones leave through _on_publish (a dict: a burst of thousands of
        # replies must not be rescanned on every publish)
        if item.qos > 0 and not info.is_published():
            self._pending[info.mid] = info

    def _flush(self) -> None:
        """Run the network until our publishes are acknowledged (or FLUSH_TIMEOUT_S)."""
        assert self.client is not None
        deadline = self.clock() + FLUSH_TIMEOUT_S
        while self.clock() < deadline:
            for mid in [m for m, p in self._pending.items() if p.is_published()]:
                self._pending.pop(mid, None)
            if not self._pending and not self.client.want_write():
                return
            if self.client.loop(timeout=min(LOOP_TIMEOUT_S, 0.05)) != MQTT_ERR_SUCCESS:
                return
        _LOGGER.warning("%d publishes unacknowledged at disconnect", len(self._pending))

    def _lost(self) -> None:
        self._open = False
        self.ready.clear()
