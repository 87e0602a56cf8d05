"""`edge-slm serve`: answer Hermes and native intent queries over MQTT, always on or in a
low-power duty cycle, and Home Assistant's Wyoming protocol beside them or alone.

    edge-slm serve --broker mqtt://127.0.0.1:1883
    edge-slm serve --bundle en-int8.slm --broker mqtts://user:pass@hub:8883 --tls-ca ca.pem \\
        --site-id kitchen --site-area kitchen=Kitchen --home inventory.yaml
    edge-slm serve --config /etc/edge-slm.toml --share-group nlu
    edge-slm serve --mode periodic --period 10 --window 2 --board pi-zero-2w
    edge-slm serve --mode adaptive --period 10 --min-period 5 --max-period 120

Hermes (Rhasspy 2.5): hermes/nlu/query -> hermes/nlu/intentParsed + hermes/intent/<name>, or
hermes/nlu/intentNotRecognized, or hermes/error/nlu. Native: edge-slm/<site>/query ->
edge-slm/<site>/intent (or the MQTT 5 response topic). SIGTERM or SIGINT publishes the
retained offline status and exits. SIGHUP loads the bundle (and --home) again, checks it and
swaps it in; a bad bundle is refused and the old model keeps serving. --slots DIR serves the
active slot of firmware-tools' agents instead of --bundle, and reloads by itself within a
second of another slot becoming active. With --trusted-key
PUB.pem (repeatable) the bundle must be signed by one of the keys, at start and on reload.

--ha-url URL (the token in --ha-token-file FILE or EDGE_SLM_HA_TOKEN, never a flag),
--discovery [PREFIX] and --z2m [BASE_TOPIC] keep the names answers are given in current from
Home Assistant, MQTT discovery configs and Zigbee2MQTT's device list; --home still wins over
them. See docs/home-assistant.md, "The home edge-slm knows".

--serial URL (any pyserial URL; --baud, default 115200) answers text lines on a serial port
instead of serving MQTT: one JSON line per line, the objects of `edge-slm parse --jsonl`.

--wyoming tcp://HOST:PORT (10500 by convention) also answers Home Assistant's Wyoming
protocol (transcript -> intent or not-recognized; docs/home-assistant.md) with the same
engine; with --no-mqtt it is all that is served. --wyoming-zeroconf [NAME] announces it.

Every option can also come from a TOML file (--config, or EDGE_SLM_CONFIG; keys are the flag
names with underscores: `period = 10`) or from the environment (EDGE_SLM_ and the name in
capitals: EDGE_SLM_PERIOD=10). Flags win over the environment, which wins over the file.

--share-group NAME subscribes through MQTT 5 shared subscriptions ($share/NAME/...), so the
daemons of one group share the queries and each query is answered once.

--mode periodic wakes every --period seconds, drains for --window seconds what the broker
queued for its persistent session, answers it and disconnects; --mode adaptive shortens the
period while traffic comes and lengthens it up to --max-period when idle. After each wake the
daemon publishes its accounting (wake-ups, messages, CPU time, energy estimated for --board)
retained on edge-slm/<site>/telemetry; `edge-slm status` prints it. See docs/daemon.md.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from .signals import handle_signals

if TYPE_CHECKING:  # imported where used: `edge-slm --help` stays quick
    from ..daemon import DaemonConfig
    from ..daemon.active_slot import ActiveSlotWatcher
    from ..daemon.broker import EmbeddedBroker
    from ..daemon.duty import DutyConfig
    from ..daemon.live_home import LiveHome
    from ..daemon.settings import ServeSettings
    from ..runtime.engine import IntentEngine


class _Default:
    """Marks an argparse default, so that a flag left out can be told from one given (flags
    win over the environment and the config file only when given)."""


class _DefaultStr(_Default, str):
    """A default string."""


class _DefaultInt(_Default, int):
    """A default integer."""


class _DefaultFloat(_Default, float):
    """A default number."""


def flag_default(value: object) -> _Default:
    """`value` marked as a default (it still compares, prints and computes as itself)."""
    if isinstance(value, str):
        return _DefaultStr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _DefaultInt(value)
    if isinstance(value, float):
        return _DefaultFloat(value)
    raise TypeError(f"no default marker for {type(value).__name__}")


def given(value: object) -> bool:
    """True when an argparse value came from the command line (not None, not a default)."""
    return value is not None and not isinstance(value, _Default)


MQTT_SETTINGS = ("broker", "mqtt_version", "client_id", "qos", "tls_ca", "tls_cert", "tls_key")
"""The settings every subcommand that speaks MQTT has flags for."""


def add_setting_args(p: argparse.ArgumentParser, names: Optional[Sequence[str]] = None) -> None:
    """A flag for each setting of `edge_slm.daemon.settings.OPTIONS` (or of those `names`),
    its type, choices, default and help taken from the table, so that none of them can drift
    from what the file and the environment get."""
    from ..daemon.settings import OPTIONS

    for option in OPTIONS:
        if names is not None and option.name not in names:
            continue
        if option.kind == "bool":  # a switch: None unless given, so the file can set it
            p.add_argument(option.flag, action="store_true", default=None,
                           help=option.flag_help.replace("%", "%%"))
            continue
        kw: Dict[str, Any] = {"help": option.flag_help.replace("%", "%%"),
                              "metavar": option.metavar}
        if option.value_type is not str:
            kw["type"] = option.value_type
        if option.choices:
            kw["choices"] = option.choices
        if option.const is not None:
            kw.update(nargs="?", const=option.const)
        if option.repeatable:
            kw["action"] = "append"
        elif option.default is not None:
            kw["default"] = flag_default(option.default)
        p.add_argument(option.flag, **kw)


def add_mqtt_args(p: argparse.ArgumentParser) -> None:
    """The broker arguments (shared by every subcommand that speaks MQTT)."""
    add_setting_args(p, MQTT_SETTINGS)


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand: --config, a flag per setting, --embedded-broker."""
    p = sub.add_parser("serve", help="serve intents over MQTT (Hermes and native JSON) and Wyoming",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, metavar="FILE.toml",
                   help="read the options from this TOML file (default: $EDGE_SLM_CONFIG); "
                        "flags and EDGE_SLM_* variables win over it")
    add_setting_args(p)
    p.add_argument("--embedded-broker", action="store_true",
                   help="start a broker for a one-machine setup on the --broker port of "
                        "127.0.0.1 (mosquitto when installed, else amqtt: always-on only) "
                        "and stop it on exit")
    p.set_defaults(run=run)


def build_settings(args: argparse.Namespace,
                   environ: Optional[Mapping[str, str]] = None) -> ServeSettings:
    """The ServeSettings of the command line, the environment (default: os.environ) and the
    config file, flags first (argparse stops here)."""
    from ..daemon.settings import OPTIONS, load_settings

    flags = {o.name: getattr(args, o.name) for o in OPTIONS if given(getattr(args, o.name, None))}
    return load_settings(flags, os.environ if environ is None else environ,
                         getattr(args, "config", None), host=socket.gethostname(),
                         pid=os.getpid())


def build_duty_config(args: argparse.Namespace) -> DutyConfig:
    """The DutyConfig of the command line, environment and config file."""
    return build_settings(args).duty


def bundle_path(settings: ServeSettings) -> Optional[Path]:
    """The bundle to load now: --bundle, or the active slot's with --slots (BundleError when
    none is active), or None for the shipped one."""
    if settings.slots is None:
        return settings.bundle
    from ..daemon.active_slot import active_bundle

    return active_bundle(settings.slots)


def engine_loader(settings: ServeSettings,
                  live: Optional[LiveHome] = None) -> Callable[[], IntentEngine]:
    """A function loading the engine of the settings' bundle (the active slot's at each call,
    with --slots) and home; with trusted keys (read now: a bad key file fails here) it
    refuses a bundle that none of them signed (SignatureError, an EdgeSlmError). With `live`,
    the home file is read again into it at each call and the engine answers for the merged
    home of every source (`LiveHome.attach`)."""
    from .parse import load_engine

    home = settings.home if live is None else None
    if not settings.trusted_keys:
        def load() -> IntentEngine:
            return load_engine(bundle_path(settings), home)
    else:
        from ..runtime.engine import default_bundle_path
        from ..signature import load_trusted_keys, read_verified

        keys = load_trusted_keys(settings.trusted_keys)

        def load() -> IntentEngine:  # the signature is checked before the bundle is parsed
            path = bundle_path(settings)
            bundle = read_verified(path if path is not None else default_bundle_path(), keys)
            return load_engine(bundle, home)

    if live is None:
        return load

    def load_live() -> IntentEngine:
        from ..daemon.live_home import file_home

        engine = load()
        if settings.home is not None:  # HomeError for a bad file: the reload is refused
            live.update(file_home(settings.home))
        return live.attach(engine)

    return load_live


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    from .serve_wyoming import check_fronts, run_wyoming_only, start_wyoming

    settings = build_settings(args)  # a bad option fails before the model is loaded
    if settings.bundle is not None and settings.slots is not None:
        from ..errors import ConfigError

        raise ConfigError(f"{settings.origins['bundle']} and {settings.origins['slots']}: "
                          "give --bundle or --slots, not both")
    check_fronts(settings, getattr(args, "embedded_broker", False))
    if settings.serial is not None:
        return run_serial(settings)
    if settings.no_mqtt:
        return run_wyoming_only(settings, engine_loader(settings), _slot_watcher(settings))
    from ..daemon.duty import DutyLoop, check_session
    from ..daemon.energy import PROFILES, EnergyMeter
    from ..daemon.handlers import Handler
    from ..daemon.live_home import LiveHome, open_sources
    from ..daemon.mqtt import MqttDaemon
    from ..daemon.retained import publish_retained
    from ..daemon.served import ServedEngine
    from ..protocols.telemetry import ALWAYS_ON, Telemetry

    config, duty = settings.daemon, settings.duty
    check_session(duty, config)
    live = LiveHome()  # the access token is read here, before the model is loaded
    follower, feed = open_sources(settings.sources, live, os.environ)
    loader = engine_loader(settings, live)
    watcher = _slot_watcher(settings)  # before loading: a switch meanwhile is seen
    source = ServedEngine(loader())  # one engine for MQTT and Wyoming
    wyoming = start_wyoming(settings, source)  # None without --wyoming
    embedded = None
    if getattr(args, "embedded_broker", False):
        try:
            config, embedded = _start_embedded_broker(config, duty.mode != ALWAYS_ON)
        except BaseException:
            if wyoming is not None:
                wyoming.stop()
            raise
    handler = Handler(source.engine, config, source=source)
    daemon = MqttDaemon(handler, config, share_group=settings.share_group,
                        reload=loader, home_feed=feed, live_home=live)
    telemetry_topic = Telemetry.topic(site_id=config.status_topic_site)
    # The daemon's own connection is closed when a wake ends, so telemetry goes out on a
    # second, short one under a client id of its own (never the daemon's: that would take
    # over its persistent session).
    publisher_id = config.mqtt_client_id + "-telemetry"

    def report(telemetry: Telemetry) -> None:
        publish_retained(config.connection(), [(telemetry_topic, telemetry.to_payload())],
                         publisher_id)

    meter = EnergyMeter(PROFILES[settings.board])
    if duty.mode != ALWAYS_ON:
        daemon.duty_cycle = lambda: meter.duty_cycle  # what Home Assistant's sensor shows
    loop = DutyLoop(daemon, duty, meter, report=report)
    loop.setup()

    # SIGHUP only sets a flag: the daemon's loop does the loading
    restore_signals = handle_signals(loop.stop, daemon.request_reload)
    if watcher is not None:
        watcher.on_change = daemon.request_reload
        watcher.start()
    if follower is not None:
        follower.start()
    sites = ", ".join(config.site_ids) or "every site"
    cycle = duty.mode if duty.mode == ALWAYS_ON else (
        f"{duty.mode}, every {duty.period_s:g} s for {duty.window_s:g} s")
    group = f", share group {settings.share_group}" if settings.share_group else ""
    also = f"; Wyoming on {wyoming.address}" if wyoming is not None else ""
    print(f"edge-slm serve: {source.served.model_id} on {config.address.host}:"
          f"{config.address.port} (MQTT {config.mqtt_version}, {sites}, {cycle}{group}, "
          f"client id {config.mqtt_client_id}{_home_words(settings)}){also}; SIGTERM or "
          "Ctrl-C stops, SIGHUP reloads", file=sys.stderr)
    try:
        loop.run_forever()
    finally:
        if wyoming is not None:
            wyoming.stop()
        if follower is not None:
            follower.stop()
        if watcher is not None:
            watcher.stop()
        restore_signals()
        if duty.mode != ALWAYS_ON:
            # asleep, the daemon holds no connection whose close() could say so
            offline = handler.status(online=False)
            publish_retained(config.connection(), [(offline.topic, offline.payload)],
                             publisher_id)
        if embedded is not None:
            embedded.stop()  # after the offline status went out
    return 0


def run_serial(settings: ServeSettings) -> int:
    """--serial: answer text lines on the port until SIGTERM or SIGINT; SIGHUP reloads."""
    from ..daemon.serial_lines import READ_TIMEOUT_S, SerialLines
    from ..daemon.serial_port import open_port
    from ..errors import ConfigError

    if settings.serial is None:
        raise ConfigError("--serial: no port URL given")
    from ..daemon.live_home import LiveHome, open_sources

    live = LiveHome()
    follower, _ = open_sources(settings.sources, live, os.environ, mqtt=False)
    loader = engine_loader(settings, live)
    watcher = _slot_watcher(settings)
    engine = loader()
    # a port that cannot be opened is a SerialPortError (an EdgeSlmError: exit status 2)
    port = open_port(settings.serial, settings.baud, timeout=READ_TIMEOUT_S)
    lines = SerialLines(engine, port, reload=loader)
    if watcher is not None:
        watcher.on_change = lines.request_reload
        watcher.start()
    if follower is not None:
        follower.start()

    restore_signals = handle_signals(lines.stop, lines.request_reload)
    print(f"edge-slm serve: {engine.bundle.model_id} on serial {settings.serial} "
          f"({settings.baud} baud); SIGTERM or Ctrl-C stops, SIGHUP reloads", file=sys.stderr)
    try:
        lines.run_forever()
    finally:
        if follower is not None:
            follower.stop()
        if watcher is not None:
            watcher.stop()
        restore_signals()
        port.close()
    return 0


def _home_words(settings: ServeSettings) -> str:
    """", home from ..." for the start line: the sources of names that are on."""
    on = [name for name, there in (("the file", settings.home is not None),
                                   ("Home Assistant", settings.sources.ha_url is not None),
                                   ("MQTT discovery", settings.sources.discovery),
                                   ("Zigbee2MQTT", settings.sources.z2m)) if there]
    return f", home from {' + '.join(on)}" if on else ""


def _slot_watcher(settings: ServeSettings) -> Optional[ActiveSlotWatcher]:
    """With --slots, an ActiveSlotWatcher of the folder (not started; its on_change is set
    when the daemon exists), else None."""
    if settings.slots is None:
        return None
    from ..daemon.active_slot import ActiveSlotWatcher

    return ActiveSlotWatcher(settings.slots, lambda: None)


def _start_embedded_broker(config: DaemonConfig, sleeps: bool
                           ) -> Tuple[DaemonConfig, EmbeddedBroker]:
    """(config pointing at it, the running EmbeddedBroker) for --embedded-broker."""
    from dataclasses import replace

    from ..daemon.broker import EmbeddedBroker, EmbeddedBrokerError

    broker = EmbeddedBroker(port=config.address.port)
    url = broker.start()
    if sleeps and not broker.persistent_sessions:
        broker.stop()
        raise EmbeddedBrokerError("the embedded amqtt broker queues nothing for a sleeping "
                                  "daemon: install mosquitto (apt-get install mosquitto) or "
                                  "use --mode always-on")
    version = "5" if broker.mqtt_version == "5" and config.mqtt_version == "5" else "3.1.1"
    print(f"edge-slm serve: embedded {broker.backend} broker at {url}", file=sys.stderr)
    return replace(config, broker=url, mqtt_version=version), broker
