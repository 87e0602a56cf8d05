"""`edge-slm serve` settings from a TOML file, the environment and the command line.

    settings = load_settings(flags={"broker": "mqtt://hub:1883"}, environ=os.environ,
                             host=socket.gethostname(), pid=os.getpid())
    settings.daemon, settings.duty, settings.bundle, settings.home, settings.board
    settings.sources              # the live sources of names (HomeSourcesConfig)

Each option has one name. In the file it is a top-level key (`period = 10`), in the
environment `EDGE_SLM_` and the name in capitals (`EDGE_SLM_PERIOD=10`), on the command line
the flag of that name with dashes (`--period 10`). Precedence: flags, then the environment,
then the file (`--config FILE` or `EDGE_SLM_CONFIG`), then the dataclasses' defaults. A key
the file does not know, a value of the wrong type or out of range is a ConfigError that names
the key and where it came from. Relative paths in the file are relative to the file's folder.

`OPTIONS` is the one table of them: `edge-slm serve` makes its flags from it (type, choices,
help, and the default of the field each one fills), so --help cannot drift from the file and
the environment.

This module builds the existing typed configs (`DaemonConfig`, `DutyConfig`,
`HomeSourcesConfig`) once, at the CLI
boundary; nothing here reads a file or the environment unless asked to. Stdlib only
(`tomllib`, or `tomli` on Python 3.10).
"""

from __future__ import annotations

import re
import sys
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

from ..errors import ConfigError
from ..protocols.base import topic_level
from ..protocols.telemetry import MODES
from . import PACKET_OVERHEAD_BYTES, DaemonConfig, parse_wyoming_url
from .duty import DutyConfig
from .energy import DEFAULT_BOARD, PROFILES
from .home_sources import TOKEN_ENV, HomeSourcesConfig
from .setting_values import (_AREAS, _BOOL, _FLOAT, _INT, _LIST, _PATH, _PATHS, _STR,
                             OptionValue, convert)

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # Python 3.10: the same parser, packaged as tomli
    import tomli as _toml

ENV_PREFIX = "EDGE_SLM_"
"""Environment variables are this prefix and the option's name in capitals."""
CONFIG_ENV = ENV_PREFIX + "CONFIG"
"""The environment variable naming the TOML file (`--config` wins over it)."""
DEFAULT_BAUD = 115200
"""Baud rate of a --serial port when none is given."""
SHARED_CLIENT_ID = "edge-slm-{site}-{host}-{pid}"
"""Client id of a daemon in a share group when none is configured: unique per process, so
several daemons on one host never take over each other's session."""


@dataclass(frozen=True)
class Option:
    """One setting: its name, type, limits, the config field it fills and its help. The
    flags of `edge-slm serve` are made from these, so a flag's help and default are the
    setting's."""

    name: str
    """The file key; the flag is `--` and the name with dashes, the variable EDGE_SLM_NAME."""
    kind: str
    """str, int, float, path, list (of names), paths (a list of paths), areas (site=area
    pairs) or bool (a switch: the flag takes no value)."""
    target: str
    """Where the value goes: "daemon.<field>", "duty.<field>", "sources.<field>" or a
    ServeSettings field; that field's default is the option's."""
    help: str = ""
    """What it sets, for --help (the default is added: see `flag_help`)."""
    default_text: str = ""
    """The default in words, for a default that is no value to print (None, empty)."""
    choices: Tuple[Union[str, int], ...] = ()
    """The allowed values (empty: any of the kind)."""
    positive: bool = False
    """Numbers only: must be above zero."""
    metavar: Optional[str] = None
    """The flag's value in --help (None: argparse's, from the name or the choices)."""
    const: Optional[str] = None
    """The value of the flag given without one (None: the flag needs a value)."""

    @property
    def env(self) -> str:
        """The environment variable."""
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        """The command-line flag."""
        return "--" + self.name.replace("_", "-")

    @property
    def default(self) -> object:
        """The value when nothing sets it: the default of the config field it fills."""
        owner, _, name = self.target.rpartition(".")
        cls = {"daemon": DaemonConfig, "duty": DutyConfig, "sources": HomeSourcesConfig,
               "": ServeSettings}[owner]
        spec = next(f for f in fields(cls) if f.name == name)
        if spec.default is not MISSING:
            return spec.default
        if not callable(spec.default_factory):
            raise TypeError(f"{self.target}: the field has no default")
        return spec.default_factory()

    @property
    def flag_help(self) -> str:
        """The flag's --help: what it sets and its default (in words, else the value)."""
        default = self.default_text or (self.default if self.default not in (None, (), {})
                                        and self.kind != _BOOL else "")
        return f"{self.help} (default: {default})" if default != "" else self.help

    @property
    def repeatable(self) -> bool:
        """A list: the flag is given once per item."""
        return self.kind in (_LIST, _PATHS, _AREAS)

    @property
    def value_type(self) -> Callable[[str], object]:
        """The type of one value on the command line."""
        return {_INT: int, _FLOAT: float, _PATH: Path, _PATHS: Path}.get(self.kind, str)

    def check(self, value: object, where: str, base: Optional[Path] = None) -> OptionValue:
        """`value` (a flag's, an environment variable's text, a TOML value) typed and
        checked; ConfigError naming `where` when it is wrong. A relative path is relative to
        `base` (the config file's folder) when given."""
        return convert(self.kind, self.choices, self.positive, value, where, base)


OPTIONS: Tuple[Option, ...] = (
    Option("bundle", _PATH, "bundle", "model bundle", "the shipped int8 one"),
    Option("slots", _PATH, "slots", "the A/B slots folder of firmware-tools' agents: serve "
           "its active bundle, and the new one whenever another becomes active (instead of "
           "--bundle)", metavar="DIR"),
    Option("home", _PATH, "home", "your home (YAML or JSON: entities, areas, floors): the only "
           "names answers are given in", "the bundle's example home"),
    Option("broker", _STR, "daemon.broker",
           "broker URL: mqtt://[user:pass@]host[:port] or mqtts://..."),
    Option("mqtt_version", _STR, "daemon.mqtt_version", "MQTT protocol version",
           choices=("5", "3.1.1")),
    Option("client_id", _STR, "daemon.client_id", "MQTT client id; keep it stable so the "
           "broker keeps the session", "edge-slm-<status site>"),
    Option("qos", _INT, "daemon.qos", "QoS of subscriptions and replies", choices=(0, 1, 2)),
    Option("tls_ca", _PATH, "daemon.tls_ca", "mqtts://: CA certificate file"),
    Option("tls_cert", _PATH, "daemon.tls_cert", "mqtts://: client certificate file"),
    Option("tls_key", _PATH, "daemon.tls_key", "mqtts://: client key file"),
    Option("keepalive", _INT, "daemon.keepalive_s", "MQTT keep-alive seconds", positive=True,
           metavar="S"),
    Option("session_expiry", _INT, "daemon.session_expiry_s", "MQTT 5: seconds the broker "
           "keeps our session and queues queries while we are away", positive=True,
           metavar="S"),
    Option("max_packet_size", _INT, "daemon.max_packet_bytes", "largest MQTT packet taken, in "
           "bytes: MQTT 5 asks the broker to drop larger ones; any that still come are "
           "skipped unread and answered with an error", metavar="BYTES"),
    Option("response_prefix", _STR, "daemon.response_prefix", "MQTT 5 response topics are "
           "honoured only under this prefix ({site}: the query's site); a query asking for "
           "another is answered with an error on the site's reply topic", metavar="PREFIX"),
    Option("rate_limit", _FLOAT, "daemon.rate_limit", "texts parsed a second per site (a "
           "batch counts each text); beyond it queries get an error unparsed; 0: no limit",
           metavar="N"),
    Option("rate_burst", _INT, "daemon.rate_burst", "texts a site may send at once after an "
           "idle while (at least a full batch, 64)", positive=True, metavar="N"),
    Option("max_batch_chars", _INT, "daemon.max_batch_chars", "most characters of the texts "
           "of one native batch together", positive=True, metavar="N"),
    Option("site_id", _LIST, "daemon.site_ids", "serve only this site; repeat for several",
           "every site", metavar="ID"),
    Option("site_area", _AREAS, "daemon.site_areas", "the area a site is in: the area of its "
           "commands that mean the satellite's room, such as 'turn on the lights' "
           "(repeatable)", metavar="SITE=AREA"),
    Option("status_site", _STR, "daemon.status_site", "site of the status and telemetry "
           "topics; give each daemon of a share group its own",
           "the first --site-id, else default", metavar="ID"),
    Option("share_group", _STR, "share_group", "MQTT 5 shared subscription group: daemons of "
           "one group share the queries, each answered once (default client id then: "
           "edge-slm-<site>-<host>-<pid>)", metavar="NAME"),
    Option("ha_discovery", _STR, "daemon.discovery_prefix", "announce diagnostic sensors to "
           "Home Assistant by MQTT discovery (prefix default homeassistant) and publish their "
           "state", metavar="PREFIX", const="homeassistant"),
    Option("ha_url", _STR, "sources.ha_url", "follow the home of this Home Assistant "
           "(http://host:8123 or ws://host:8123/api/websocket): its areas, floors and the "
           "entities exposed to Assist become the names answers are given in, kept current",
           metavar="URL"),
    Option("ha_token_file", _PATH, "sources.ha_token_file", "a file holding Home Assistant's "
           "long-lived access token (never give the token itself as an option)",
           f"the {TOKEN_ENV} variable", metavar="FILE"),
    Option("discovery", _STR, "sources.discovery_prefix", "learn names from the Home "
           "Assistant MQTT discovery configs on the broker, under this prefix (default "
           "homeassistant); devices come and go with their configs", metavar="PREFIX",
           const="homeassistant"),
    Option("z2m", _STR, "sources.z2m_base_topic", "learn names from the device list of "
           "Zigbee2MQTT on the broker, under this base topic (default zigbee2mqtt)",
           metavar="BASE_TOPIC", const="zigbee2mqtt"),
    Option("z2m_max_payload", _INT, "sources.z2m_max_payload_bytes", "--z2m: largest device "
           "list read, in bytes (the MQTT packet size limit is raised to take it)",
           positive=True, metavar="BYTES"),
    Option("mode", _STR, "duty.mode", "always-on (event driven), periodic (wake every "
           "--period) or adaptive (period follows traffic)", choices=MODES),
    Option("period", _FLOAT, "duty.period_s", "periodic: seconds from wake to wake; adaptive: "
           "the first period", positive=True, metavar="S"),
    Option("window", _FLOAT, "duty.window_s", "seconds connected per wake", positive=True,
           metavar="S"),
    Option("min_period", _FLOAT, "duty.min_period_s", "adaptive: shortest period",
           positive=True, metavar="S"),
    Option("max_period", _FLOAT, "duty.max_period_s", "adaptive: longest period",
           positive=True, metavar="S"),
    Option("board", _STR, "board", "power profile the energy is estimated for",
           choices=tuple(sorted(PROFILES))),
    Option("trusted_key", _PATHS, "trusted_keys", "trusted Ed25519 public key (PEM; repeat "
           "for several): the bundle must be signed by one of them, at start and on every "
           "SIGHUP reload", metavar="PUB.pem"),
    Option("serial", _STR, "serial", "answer text lines on this serial port (any pyserial "
           "URL: /dev/ttyS0, socket://host:port, loop://) instead of serving MQTT",
           metavar="URL"),
    Option("baud", _INT, "baud", "--serial: baud rate", positive=True, metavar="N"),
    Option("wyoming", _STR, "wyoming", "also answer Home Assistant's Wyoming protocol on this "
           "address (tcp://HOST:PORT; 10500 by convention, tcp://0.0.0.0:10500 for the whole "
           "network): transcript or recognize in, intent or not-recognized out",
           metavar="URL"),
    Option("wyoming_zeroconf", _STR, "wyoming_zeroconf", "announce the Wyoming service by "
           "zeroconf under this name (default edge-slm), so Home Assistant discovers it; needs "
           "the zeroconf package", metavar="NAME", const="edge-slm"),
    Option("no_mqtt", _BOOL, "no_mqtt", "serve no MQTT at all (only --wyoming)"),
)
"""Every option of `edge-slm serve` that a file, the environment or a flag can set."""
_BY_NAME = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class ServeSettings:
    """Everything `edge-slm serve` runs with, merged from defaults, file, environment, flags."""

    daemon: DaemonConfig
    """The MQTT side: broker, sites, session, TLS."""
    duty: DutyConfig
    """always-on, periodic or adaptive, with the period and window."""
    bundle: Optional[Path] = None
    """The model bundle (None: the shipped int8 one); SIGHUP reloads it from this path."""
    slots: Optional[Path] = None
    """The A/B slots folder whose active bundle is served (instead of `bundle`)."""
    home: Optional[Path] = None
    """The home's inventory YAML (None: the bundle's own names)."""
    sources: HomeSourcesConfig = field(default_factory=HomeSourcesConfig)
    """The live sources of names (Home Assistant, MQTT discovery, Zigbee2MQTT)."""
    board: str = DEFAULT_BOARD
    """Power profile of the energy estimate."""
    share_group: Optional[str] = None
    """MQTT 5 shared-subscription group (None: this daemon gets every query)."""
    config_file: Optional[Path] = None
    """The TOML file read, if any."""
    origins: Mapping[str, str] = field(default_factory=dict)
    """Where each option that was set came from ({"period": "EDGE_SLM_PERIOD"})."""
    trusted_keys: Tuple[Path, ...] = ()
    """Ed25519 public keys (PEM); with any, the bundle must be signed by one of them, at start
    and on every reload (empty: signatures are not checked)."""
    serial: Optional[str] = None
    """A pyserial URL: answer text lines on it instead of serving MQTT (None: MQTT)."""
    baud: int = DEFAULT_BAUD
    """The --serial port's baud rate."""
    wyoming: Optional[str] = None
    """tcp://HOST:PORT to answer Wyoming on, beside MQTT or alone (None: no Wyoming)."""
    wyoming_zeroconf: Optional[str] = None
    """The name to announce the Wyoming service under by zeroconf (None: not announced)."""
    no_mqtt: bool = False
    """Serve no MQTT (Wyoming only)."""


def read_file(path: Path) -> Dict[str, Any]:
    """The TOML file's options by name; ConfigError for a missing or malformed file or an
    unknown key (named, with the file)."""
    try:
        with open(path, "rb") as f:
            data = _toml.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except OSError as err:
        raise ConfigError(f"config file {path}: cannot read it ({err})") from None
    except (_toml.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path}: not valid TOML ({err})") from None
    except RecursionError:  # tomllib parses nested arrays and tables by recursion
        raise ConfigError(f"config file {path}: not valid TOML (nested too deeply)") from None
    unknown = sorted(set(data) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"config file {path}: unknown key {unknown[0]!r} (known: "
                          f"{', '.join(o.name for o in OPTIONS)})")
    return data


def load_settings(flags: Optional[Mapping[str, object]] = None,
                  environ: Optional[Mapping[str, str]] = None,
                  config_file: Optional[Path] = None, host: str = "localhost",
                  pid: int = 0) -> ServeSettings:
    """Merge the options (flags > environment > file > defaults) into the configs.

    `flags` holds only the options given on the command line, by name, as argparse typed
    them. `config_file` (else `EDGE_SLM_CONFIG` in `environ`) is the TOML file. `host` and
    `pid` make the client id of a share-group daemon that has none configured."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = environ or {}
    unknown = sorted(set(flags) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r}")
    if config_file is None and environ.get(CONFIG_ENV):
        config_file = Path(environ[CONFIG_ENV])
    from_file = read_file(config_file) if config_file is not None else {}
    values: Dict[str, OptionValue] = {}
    origins: Dict[str, str] = {}
    for option in OPTIONS:
        if option.name in flags:
            where = option.flag
            value = option.check(flags[option.name], where)
        elif environ.get(option.env):  # an empty variable counts as unset
            where = option.env
            value = option.check(environ[option.env], where)
        elif option.name in from_file:
            where = f"{config_file}: {option.name}"
            value = option.check(from_file[option.name], where,
                                 Path(config_file).parent if config_file else None)
        else:
            continue
        values[option.name], origins[option.name] = value, where
    return _build(values, origins, config_file, host, pid)


def _build(values: Dict[str, OptionValue], origins: Dict[str, str],
           config_file: Optional[Path], host: str, pid: int) -> ServeSettings:
    # keyword arguments of DaemonConfig, DutyConfig and ServeSettings (a type per key)
    daemon: Dict[str, Any] = {}
    duty: Dict[str, Any] = {}
    sources: Dict[str, Any] = {}
    top: Dict[str, Any] = {}
    for name, value in values.items():
        target = _BY_NAME[name].target
        if target.startswith("daemon."):
            daemon[target[7:]] = str(value) if isinstance(value, Path) else value
        elif target.startswith("duty."):
            duty[target[5:]] = value
        elif target.startswith("sources."):
            sources[target[8:]] = value
        else:
            top[target] = value
    if top.get("wyoming") is not None:
        try:
            parse_wyoming_url(top["wyoming"])
        except ConfigError as err:
            raise ConfigError(f"{origins['wyoming']}: {err}") from None
    group = top.get("share_group")
    if group is not None:
        topic_level(group, f"{origins['share_group']}: share group")
        if daemon.get("mqtt_version", "5") != "5":
            raise ConfigError(f"{origins['share_group']}: shared subscriptions need MQTT 5")
    try:
        daemon_config = DaemonConfig(**daemon)
        if group is not None and not daemon_config.client_id:
            # each member of the group needs a client id of its own (see docs/daemon.md)
            daemon_config = DaemonConfig(**dict(daemon, client_id=SHARED_CLIENT_ID.format(
                site=daemon_config.status_topic_site, host=_client_id_part(host), pid=pid)))
        duty_config = DutyConfig(**duty)
        sources_config = HomeSourcesConfig(**sources)
        if sources_config.z2m:  # Zigbee2MQTT's device list comes on the daemon's connection
            daemon_config = replace(daemon_config, max_packet_bytes=max(
                daemon_config.max_packet_bytes,
                sources_config.z2m_max_payload_bytes + PACKET_OVERHEAD_BYTES))
    except ConfigError as err:
        raise ConfigError(f"{err} (settings from {_describe(origins)})") from None
    return ServeSettings(daemon=daemon_config, duty=duty_config, bundle=top.get("bundle"),
                         slots=top.get("slots"), sources=sources_config,
                         home=top.get("home"), board=top.get("board", DEFAULT_BOARD),
                         share_group=group, config_file=config_file, origins=origins,
                         trusted_keys=top.get("trusted_keys", ()), serial=top.get("serial"),
                         baud=top.get("baud", DEFAULT_BAUD), wyoming=top.get("wyoming"),
                         wyoming_zeroconf=top.get("wyoming_zeroconf"),
                         no_mqtt=bool(top.get("no_mqtt", False)))


def _describe(origins: Mapping[str, str]) -> str:
    return ", ".join(f"{k} from {v}" for k, v in origins.items()) or "the defaults only"


def _client_id_part(host: str) -> str:
    """The host name as a client-id part (letters, digits, dashes)."""
    return re.sub(r"[^0-9A-Za-z-]+", "-", host).strip("-") or "host"
