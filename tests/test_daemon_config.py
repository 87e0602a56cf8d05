"""`edge-slm serve` settings: a TOML file, EDGE_SLM_* variables and flags merged into the
typed configs (flags > environment > file > defaults); unknown keys and bad values refused
with the key and its source named. No broker, no model."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_parsers import subcommand

from edge_slm.cli import build_parser, main
from edge_slm.cli.serve import build_settings, given
from edge_slm.daemon import DaemonConfig
from edge_slm.daemon.duty import DutyConfig
from edge_slm.daemon.settings import OPTIONS, load_settings, read_file

REPO = Path(__file__).resolve().parent.parent

FILE = """
broker = "mqtt://file-host:1883"
client_id = "from-file"
qos = 2
site_id = ["kitchen", "hall"]
mode = "periodic"
period = 30
window = 3.5
board = "pi-zero-2w"
bundle = "models/en.slm"

[site_area]
kitchen = "Kitchen"
"""


@pytest.fixture
def toml(tmp_path):
    """Writes a TOML file and returns its path."""
    def write(text: str, name: str = "edge-slm.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


def _settings(argv, environ=None):
    return build_settings(build_parser().parse_args(["serve", *argv]), environ or {})


def test_defaults_without_file_env_or_flags():
    s = _settings([])
    assert s.daemon == DaemonConfig() and s.duty == DutyConfig()
    assert (s.bundle, s.home, s.board, s.share_group, s.config_file) == (
        None, None, "pi-4", None, None)
    assert dict(s.origins) == {}


def test_file_values_reach_the_configs(toml):
    path = toml(FILE)
    s = _settings(["--config", str(path)])
    assert s.daemon == DaemonConfig(broker="mqtt://file-host:1883", client_id="from-file",
                                    qos=2, site_ids=("kitchen", "hall"),
                                    site_areas={"kitchen": "Kitchen"})
    assert s.duty == DutyConfig(mode="periodic", period_s=30.0, window_s=3.5)
    assert s.board == "pi-zero-2w"
    assert s.bundle == path.parent / "models" / "en.slm"  # relative to the file
    assert s.origins["period"] == f"{path}: period"


def test_environment_beats_file_and_flags_beat_both(toml):
    path = toml(FILE)
    env = {"EDGE_SLM_BROKER": "mqtt://env-host:1", "EDGE_SLM_PERIOD": "20",
           "EDGE_SLM_SITE_ID": "attic, cellar", "EDGE_SLM_MODE": "adaptive",
           "EDGE_SLM_MIN_PERIOD": "4", "EDGE_SLM_BUNDLE": "/env/b.slm",
           "EDGE_SLM_SITE_AREA": "attic=Attic,cellar=Cellar", "EDGE_SLM_QOS": "",  # unset
           "EDGE_SLM_CONFIG": str(path)}
    s = _settings([], env)
    assert s.config_file == path
    assert s.daemon.broker == "mqtt://env-host:1"
    assert s.daemon.site_ids == ("attic", "cellar")
    assert s.daemon.site_areas == {"attic": "Attic", "cellar": "Cellar"}
    assert s.daemon.qos == 2 and s.daemon.client_id == "from-file"  # the file's
    assert (s.duty.mode, s.duty.period_s, s.duty.min_period_s, s.duty.window_s) == (
        "adaptive", 20.0, 4.0, 3.5)
    assert s.bundle == Path("/env/b.slm")
    assert s.origins["broker"] == "EDGE_SLM_BROKER" and s.origins["qos"] == f"{path}: qos"

    s = _settings(["--broker", "mqtt://flag-host:2", "--period", "25", "--site-id", "porch",
                   "--qos", "1", "--mode", "periodic", "--bundle", "flag.slm"], env)
    assert s.daemon.broker == "mqtt://flag-host:2"
    assert s.daemon.site_ids == ("porch",) and s.daemon.qos == 1
    assert (s.duty.mode, s.duty.period_s) == ("periodic", 25.0)
    assert s.bundle == Path("flag.slm")  # a flag's relative path is the shell's
    assert s.daemon.site_areas == {"attic": "Attic", "cellar": "Cellar"}  # env still
    assert s.origins["period"] == "--period"


def test_config_flag_beats_the_config_variable(toml):
    first = toml('broker = "mqtt://one:1"', "a.toml")
    second = toml('broker = "mqtt://two:2"', "b.toml")
    s = _settings(["--config", str(second)], {"EDGE_SLM_CONFIG": str(first)})
    assert s.daemon.broker == "mqtt://two:2"


def test_a_flag_given_with_its_default_value_still_wins(toml):
    path = toml('mode = "periodic"\nqos = 2\nboard = "pi-5"\n')
    s = _settings(["--config", str(path), "--mode", "always-on", "--qos", "1",
                   "--board", "pi-4"])
    assert (s.duty.mode, s.daemon.qos, s.board) == ("always-on", 1, "pi-4")


def test_parsed_defaults_are_not_taken_for_flags():
    args = build_parser().parse_args(["serve"])
    assert args.mode == "always-on" and args.period == 10.0 and args.qos == 1
    assert not any(given(getattr(args, o.name, None)) for o in OPTIONS)
    assert given(build_parser().parse_args(["serve", "--period", "10"]).period)


def test_every_option_has_a_serve_flag():
    args = build_parser().parse_args(["serve"])
    for option in OPTIONS:
        assert hasattr(args, option.name), option.flag


def test_share_group_makes_a_unique_client_id():
    s = load_settings({"share_group": "nlu", "status_site": "w1"}, host="pi.local", pid=42)
    assert s.share_group == "nlu"
    assert s.daemon.client_id == "edge-slm-w1-pi-local-42"
    other = load_settings({"share_group": "nlu", "status_site": "w1"}, host="pi.local", pid=43)
    assert other.daemon.client_id != s.daemon.client_id
    chosen = load_settings({"share_group": "nlu", "client_id": "mine"}, host="h", pid=1)
    assert chosen.daemon.client_id == "mine"
    assert load_settings({}, host="h", pid=1).daemon.mqtt_client_id == "edge-slm-default"


def test_unknown_key_names_the_key_and_the_file(toml):
    path = toml('broker = "mqtt://h:1"\nperiod_s = 10\n')
    with pytest.raises(ValueError) as err:
        read_file(path)
    assert "period_s" in str(err.value) and str(path) in str(err.value)


def test_unknown_key_fails_the_command_with_status_2(toml, capsys):
    path = toml('brokers = "mqtt://h:1"\n')
    assert main(["serve", "--config", str(path)]) == 2
    message = capsys.readouterr().err
    assert "unknown key 'brokers'" in message and str(path) in message


@pytest.mark.parametrize("text, words", [
    ('qos = "one"', ["qos", "integer"]),
    ("qos = 3", ["qos", "not one of"]),
    ("qos = true", ["qos", "integer"]),
    ('period = "ten"', ["period", "number"]),
    ("period = -1", ["period", "above zero"]),
    ('mode = "sometimes"', ["mode", "not one of"]),
    ('board = "pi-9"', ["board", "not one of"]),
    ('site_id = [1, 2]', ["site_id", "list of names"]),
    ('site_area = ["kitchen"]', ["site_area", "SITE=AREA"]),
    ('broker = "http://h"', ["scheme must be mqtt", "broker from"]),
    ('share_group = "a/b"', ["share_group", "topic level"]),
    ('share_group = "g"\nmqtt_version = "3.1.1"', ["share_group", "MQTT 5"]),
    ('mode = "periodic"\nperiod = 2\nwindow = 5', ["window", "never sleep"]),
    ("broker = ", ["not valid TOML"]),
    ('bundle = "~0"', ["bundle", "home folder"]),  # fuzzing: RuntimeError from expanduser
    ("bundle = " + "[" * 100_000, ["not valid TOML", "deeply"]),  # fuzzing: RecursionError
    ('no_mqtt = "maybe"', ["no_mqtt", "true or false"]),
    ("no_mqtt = 1", ["no_mqtt", "true or false"]),
    ('wyoming = "http://h:10500"', ["wyoming", "tcp://HOST:PORT"]),
    ('wyoming = "tcp://h"', ["wyoming", "tcp://HOST:PORT"]),
    ('wyoming = "tcp://h:99999"', ["wyoming", "port"]),
    ('wyoming = "tcp://h:1/path"', ["wyoming", "nothing else"]),
])
def test_bad_file_values_are_refused_clearly(toml, text, words):
    path = toml(text + "\n")
    with pytest.raises(ValueError) as err:
        _settings(["--config", str(path)])
    for word in words:
        assert word in str(err.value), str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("env, words", [
    ({"EDGE_SLM_PERIOD": "soon"}, ["EDGE_SLM_PERIOD", "number"]),
    ({"EDGE_SLM_PERIOD": "nan"}, ["EDGE_SLM_PERIOD", "number"]),
    ({"EDGE_SLM_QOS": "1.5"}, ["EDGE_SLM_QOS", "integer"]),
    ({"EDGE_SLM_MODE": "never"}, ["EDGE_SLM_MODE", "not one of"]),
    ({"EDGE_SLM_SITE_AREA": "kitchen"}, ["EDGE_SLM_SITE_AREA", "SITE=AREA"]),
    ({"EDGE_SLM_SESSION_EXPIRY": "0"}, ["EDGE_SLM_SESSION_EXPIRY", "above zero"]),
    ({"EDGE_SLM_HOME": "~0/h.yaml"}, ["EDGE_SLM_HOME", "home folder"]),  # fuzzing
    ({"EDGE_SLM_NO_MQTT": "perhaps"}, ["EDGE_SLM_NO_MQTT", "true or false"]),
    ({"EDGE_SLM_WYOMING": "10500"}, ["EDGE_SLM_WYOMING", "tcp://HOST:PORT"]),
])
def test_bad_environment_values_name_the_variable(env, words):
    with pytest.raises(ValueError) as err:
        _settings([], env)
    for word in words:
        assert word in str(err.value), str(err.value)


@pytest.mark.parametrize("text, value", [("1", True), ("yes", True), ("On", True),
                                         ("0", False), ("false", False), ("off", False)])
def test_a_switch_from_the_environment_beats_the_file(toml, text, value):
    path = toml(f"no_mqtt = {str(not value).lower()}\nwyoming = \"tcp://[::1]:10500\"\n")
    s = _settings(["--config", str(path)], {"EDGE_SLM_NO_MQTT": text})
    assert s.no_mqtt is value and s.wyoming == "tcp://[::1]:10500"
    assert _settings(["--config", str(path), "--no-mqtt"], {"EDGE_SLM_NO_MQTT": "0"}).no_mqtt


def test_zeroconf_flag_takes_an_optional_name():
    assert _settings(["--wyoming-zeroconf"]).wyoming_zeroconf == "edge-slm"
    assert _settings(["--wyoming-zeroconf", "hall-pi"]).wyoming_zeroconf == "hall-pi"
    assert _settings([]).wyoming_zeroconf is None


def test_bad_flag_value_from_the_command_line(capsys):
    assert main(["serve", "--period", "-3"]) == 2
    assert "--period: must be above zero" in capsys.readouterr().err


def test_missing_config_file(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        _settings(["--config", str(tmp_path / "nope.toml")])


def test_the_example_file_loads():
    s = _settings(["--config", str(REPO / "examples" / "edge-slm.toml")])
    assert s.daemon.site_ids == ("kitchen", "hall")
    assert s.daemon.site_areas == {"kitchen": "Kitchen", "hall": "Hall"}
    assert s.duty == DutyConfig()


def _serve_flags():
    """The `serve` subcommand's actions by option string."""
    return {s: a for a in subcommand("serve")._actions for s in a.option_strings}


def _field_default(settings, target):
    """The value a setting's target has when nothing sets it, read off built configs."""
    owner, _, name = target.rpartition(".")
    return getattr(getattr(settings, owner) if owner else settings, name)


def test_every_setting_flag_has_the_settings_help_and_default():
    flags = _serve_flags()
    defaults = load_settings({})  # nothing set: every field at its default
    args = build_parser().parse_args(["serve"])
    for option in OPTIONS:
        action = flags[option.flag]
        assert action.help.replace("%%", "%") == option.flag_help, option.flag
        assert option.help and action.help.startswith(option.help), option.flag
        value = _field_default(defaults, option.target)
        assert option.default == value, option.flag
        if option.kind == "bool":  # a switch: None unless given (off), no default in its help
            assert value is False and getattr(args, option.name) is None, option.flag
            assert "(default:" not in action.help and action.nargs == 0, option.flag
        elif value not in (None, (), {}):  # a value: the flag's default, shown in its help
            parsed = getattr(args, option.name)
            assert parsed == value and not given(parsed), option.flag
            assert f"(default: {option.default_text or value})" in action.help, option.flag
        else:
            assert getattr(args, option.name) is None, option.flag
        assert tuple(action.choices or ()) == option.choices, option.flag


def test_flag_environment_and_file_give_a_setting_the_same_value(toml):
    """Each option, set the same way in the three places, lands in the same field."""
    samples = {"bundle": "b.slm", "home": "h.yaml", "broker": "mqtts://hub:8883",
               "mqtt_version": "5", "client_id": "c", "qos": "2", "keepalive": "7",
               "session_expiry": "9", "tls_ca": "/ca.pem", "tls_cert": "/c.pem",
               "tls_key": "/k.pem", "site_id": "kitchen", "site_area": "kitchen=Kitchen",
               "status_site": "kitchen", "share_group": "g", "ha_discovery": "ha",
               "mode": "periodic", "period": "30", "window": "3", "min_period": "4",
               "max_period": "50", "board": "pi-5", "trusted_key": "/t.pem",
               "serial": "loop://", "baud": "9600", "slots": "/slots", "max_packet_size": "4096",
               "response_prefix": "r/{site}/", "rate_limit": "2.5", "rate_burst": "80",
               "max_batch_chars": "300", "wyoming": "tcp://0.0.0.0:10500",
               "wyoming_zeroconf": "kitchen-pi", "no_mqtt": "true",
               "ha_url": "http://hub:8123",
               "ha_token_file": "/ha.token", "discovery": "ha", "z2m": "z2m",
               "z2m_max_payload": "100000"}
    assert set(samples) == {o.name for o in OPTIONS}
    argv = []
    for name, text in samples.items():
        argv += [f"--{name.replace('_', '-')}"] + ([] if name == "no_mqtt" else [text])
    from_flags = _settings(argv)
    from_env = _settings([], {f"EDGE_SLM_{k.upper()}": v for k, v in samples.items()})
    lines = []
    for option in OPTIONS:
        text = samples[option.name]
        if option.kind in ("int", "float", "bool"):
            lines.append(f"{option.name} = {text}")
        elif option.kind == "areas":
            lines.append(f'{option.name} = {{ kitchen = "Kitchen" }}')
        elif option.kind in ("list", "paths"):
            lines.append(f'{option.name} = ["{text}"]')
        else:
            lines.append(f'{option.name} = "{text}"')
    from_file = _settings(["--config", str(toml("\n".join(lines) + "\n"))])
    for option in OPTIONS:
        if option.kind == "path":  # a file's relative path is the file's folder's
            continue
        value = _field_default(from_flags, option.target)
        assert value == _field_default(from_env, option.target), option.name
        assert value == _field_default(from_file, option.target), option.name


def test_the_docs_table_names_every_setting():
    text = (REPO / "docs" / "daemon.md").read_text(encoding="utf-8")
    table = text[text.index("| name (key, `--flag`, `EDGE_SLM_…`) |"):]
    table = table[:table.index("\n\n")]
    for option in OPTIONS:
        assert f"`{option.name}`" in table, option.name
