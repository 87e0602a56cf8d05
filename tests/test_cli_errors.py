"""One error channel: the command lines print an `EdgeSlmError` as one line and exit 2, and
let anything else (a bug) through with its traceback; renamed flags keep their old spelling
as a hidden alias. No model, no broker."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from cli_parsers import subcommand

from edge_slm.cli import build_parser, main
from edge_slm.cli import models as models_cmd
from edge_slm.errors import ConfigError, EdgeSlmError
from firmware_tools import signing
from firmware_tools.__main__ import build_parser as fw_build_parser
from firmware_tools.__main__ import main as fw_main


def _one_line_error(err: str, prog: str) -> None:
    assert err.startswith(f"{prog}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_config_error_is_an_edge_slm_error_and_a_value_error():
    assert issubclass(ConfigError, EdgeSlmError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("argv, words", [
    (["serve", "--config", "{tmp}/nope.toml"], "not found"),
    (["serve", "--broker", "http://hub"], "scheme must be mqtt"),
    (["serve", "--broker", "mqtt://[::1"], "broker 'mqtt://[::1'"),
    (["serve", "--mode", "periodic", "--qos", "0"], "QoS 1 or 2"),
    (["parse", "--area", " ", "lights on"], "--area"),
    (["parse"], "nothing to parse"),
    (["corpus", "--count", "0"], "--count"),
    (["eval", "--data", "{tmp}/missing.jsonl"], "no such file"),
    (["eval", "--data", "{tmp}/bad.jsonl"], "bad.jsonl:2: not JSON"),
    (["eval", "--data", "{tmp}/binary.jsonl"], "not UTF-8"),
    (["status", "--timeout", "0"], "--timeout"),
    (["convert", "--model", "{tmp}", "--out", "{tmp}/o", "--max-bytes", "int4=lots"],
     "--max-bytes 'int4=lots'"),
    (["convert", "--model", "{tmp}", "--out", "{tmp}/o", "--max-bytes", "=5"], "positive"),
    (["convert", "--model", "{tmp}", "--out", "{tmp}/o", "--int4-block", "48"],
     "int4 block 48: choose from 0, 32, 64, 128, 256"),
    (["convert", "--bundle", "{tmp}/a.slm", "--out", "{tmp}/o"], "--bundle needs --run RUN"),
    (["convert", "--bundle", "{tmp}/a.slm", "--run", "{tmp}", "--out", "{tmp}/o"],
     "a.slm: no such file"),
    (["status", "--site-id", "a/b"], "cannot be an MQTT topic level"),
])
def test_a_user_error_is_one_line_and_status_2(tmp_path, capsys, argv, words):
    (tmp_path / "bad.jsonl").write_text('{"text": "hi"}\n{"text": \n')
    (tmp_path / "binary.jsonl").write_bytes(b'{"text": "\xff"}\n')
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    _one_line_error(err, f"edge-slm {argv[0]}")
    assert words in err


def test_convert_size_limits_parse():
    from edge_slm.cli.convert import _sizes

    assert _sizes("int4=1_000_000, int8=1600000") == {"int4": 1_000_000, "int8": 1_600_000}
    assert _sizes("") == {}


def test_convert_help_states_the_converters_own_limits():
    # the CLI leaves these defaults to ConvertConfig (not imported at start-up) and only
    # states them in its help: the two must agree
    from edge_slm.convert.build import ConvertConfig

    helps = {a.dest: a.help for a in subcommand("convert")._actions}
    config = ConvertConfig()
    assert f"(default {config.max_false_accept})" in helps["max_false_accept"]
    sizes = ",".join(f"{k}={v}" for k, v in config.max_bundle_bytes.items())
    assert f"(default {sizes};" in helps["max_bytes"]
    assert f"(default {config.int4_block})" in helps["int4_block"]


def test_corpus_input_errors_are_one_line(tmp_path, capsys):
    pytest.importorskip("hassil")
    home = tmp_path / "home.yaml"
    home.write_bytes(b"areas: [\xff]\n")
    assert main(["corpus", "--count", "5", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    _one_line_error(err, "edge-slm corpus")
    assert str(home) in err and "not UTF-8" in err
    assert main(["corpus", "--count", "5", "--lang", "xx-nowhere"]) == 2
    err = capsys.readouterr().err
    _one_line_error(err, "edge-slm corpus")
    assert "no intents for language 'xx-nowhere'" in err


def test_firmware_tools_user_errors_are_one_line(tmp_path, capsys):
    empty, some = tmp_path / "empty.slm", tmp_path / "some.slm"
    empty.write_bytes(b"")
    some.write_bytes(b"PK")
    for argv, words in [
        (["flash", str(empty), "--port", "loop://", "--no-progress"], "the file is empty"),
        (["flash", str(tmp_path / "no.slm"), "--port", "loop://"], "cannot read"),
        (["ota", str(some), "--broker", "http://hub", "--site-id", "s", "--no-progress"],
         "scheme must be mqtt"),
        (["verify", str(tmp_path / "no.slm"), "--trusted-key", str(some)], "no such bundle"),
    ]:
        assert fw_main(argv) == 2, argv
        err = capsys.readouterr().err
        _one_line_error(err, f"firmware-tools {argv[0]}")
        assert words in err


@pytest.mark.parametrize("bug", [ValueError("a bug"), KeyError("a bug"), TypeError("a bug")])
def test_a_bug_is_not_taken_for_a_user_error(monkeypatch, bug):
    def run(args: argparse.Namespace) -> int:
        raise bug

    monkeypatch.setattr(models_cmd, "run", run)
    with pytest.raises(type(bug)):
        main(["models"])
    monkeypatch.setattr(signing, "keygen", lambda out: run(argparse.Namespace()))
    with pytest.raises(type(bug)):
        fw_main(["keygen", "--out", "unused"])


def test_a_bug_shows_its_traceback_on_the_command_line():
    code = ("import edge_slm.cli.models as m\n"
            "m.run = lambda args: int('not a number')\n"
            "from edge_slm.cli import main\n"
            "raise SystemExit(main(['models']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1
    assert "Traceback" in r.stderr and "ValueError: invalid literal" in r.stderr
    assert "edge-slm models: error" not in r.stderr


@pytest.mark.parametrize("make, argv, dest, value", [
    (fw_build_parser, ["verify", "b.slm", "--pubkey", "k.pem"], "trusted_key", [Path("k.pem")]),
    (fw_build_parser, ["ota", "b.slm", "--broker", "mqtt://h", "--site", "s"], "site_id", "s"),
    (fw_build_parser, ["serial-agent", "--port", "loop://", "--slots", "d", "--pubkey", "k.pem"],
     "trusted_key", [Path("k.pem")]),
    (fw_build_parser, ["ota-agent", "--broker", "mqtt://h", "--site", "s", "--slots", "d"],
     "site_id", "s"),
    (build_parser, ["corpus", "--inventory", "home.yaml"], "home", Path("home.yaml")),
])
def test_the_old_spelling_of_a_renamed_flag_still_works(make, argv, dest, value):
    assert getattr(make().parse_args(argv), dest) == value


def test_old_and_new_spellings_fill_one_list():
    args = fw_build_parser().parse_args(["verify", "b", "--trusted-key", "a", "--pubkey", "c"])
    assert args.trusted_key == [Path("a"), Path("c")]
    with pytest.raises(SystemExit):  # still required, under either name
        fw_build_parser().parse_args(["verify", "b"])


@pytest.mark.parametrize("make, command, new, old", [
    (fw_build_parser, "verify", "--trusted-key", "--pubkey"),
    (fw_build_parser, "ota", "--site-id", "--site"),
    (fw_build_parser, "serial-agent", "--trusted-key", "--pubkey"),
    (fw_build_parser, "ota-agent", "--site-id", "--site"),
    (build_parser, "corpus", "--home", "--inventory"),
])
def test_help_shows_only_the_new_spelling(make, command, new, old, capsys):
    with pytest.raises(SystemExit):
        make().parse_args([command, "--help"])
    out = capsys.readouterr().out
    assert new in out and old + " " not in out and old + "\n" not in out
