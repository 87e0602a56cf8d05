"""Fuzzing the files edge-slm reads with hypothesis: bundles (`read_bundle` on mutations of
the shipped bundle and on made-up zips: only BundleError), `serve`'s settings (a TOML file
made of its own keys with any values, mutations of examples/edge-slm.toml, and any
environment: only ConfigError) and homes (`load_inventory` on mutations of the shipped
home and on made-up homes in YAML or JSON, a bundle's `home.json`: only HomeError).

Examples per target: the hypothesis profile (tests/conftest.py)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from fuzz_strategies import json_values, mutated, objects_with, texts  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edge_slm.bundle import MANIFEST, REQUIRED_MEMBERS, BundleError, read_bundle  # noqa: E402
from edge_slm.errors import ConfigError, HomeError  # noqa: E402
from edge_slm.protocols.base import lone_surrogate  # noqa: E402
from edge_slm.home import home_from_bundle_json, inventory_from_dict, load_inventory  # noqa
from edge_slm.runtime.engine import default_bundle_path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHIPPED = default_bundle_path("int4").read_bytes()
INVENTORY = b"""floors:
  - name: ground floor
    aliases: [downstairs, main floor]
  - {name: upstairs}
areas:
  - name: kitchen
    floor: ground floor
    aliases: [cooking area]
  - {name: hall, floor: upstairs}
entities:
  - name: kitchen light
    domain: light
    area: kitchen
    aliases: [ceiling light]
  - {name: front door, domain: lock, device_class: door}
  - name: garage door
    domain: cover
    attributes: {device_class: garage}
"""
"""A small home in the shipped inventory's style (PyYAML is slow on the 40 KB one)."""
EXAMPLE_TOML = (REPO / "examples" / "edge-slm.toml").read_bytes()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Where the fuzzed files are written (one file, rewritten by each example)."""
    return tmp_path_factory.mktemp("fuzz")


# -- bundles -----------------------------------------------------------------------------------


@given(mutated(SHIPPED))
def test_read_bundle_on_mutated_shipped_bundle_raises_bundle_error_only(data):
    try:
        read_bundle(data)
    except BundleError:
        pass


def _zip(members) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


MANIFEST_KEYS = ("magic", "format_version", "members", "min_runtime_version", "model_id",
                 "quantization", "golden", "lang", "signature")
manifests = st.one_of(
    objects_with(MANIFEST_KEYS),
    st.fixed_dictionaries(
        {"magic": st.just("edge-slm-bundle"), "format_version": st.just(1),
         "members": st.dictionaries(st.sampled_from(REQUIRED_MEMBERS + ("x", "../up")),
                                    st.one_of(json_values, st.fixed_dictionaries(
                                        {"bytes": st.integers(-1, 40), "sha256": texts})))},
        optional={"min_runtime_version": st.one_of(json_values, st.text("0123456789.",
                                                                        max_size=30))}))
names = texts.filter(lambda t: t and "\x00" not in t and lone_surrogate(t) is None)
"""Member names a zip can hold (UTF-8, no NUL)."""
zips = st.lists(st.tuples(st.one_of(st.sampled_from((MANIFEST,) + REQUIRED_MEMBERS), names),
                          st.one_of(manifests.map(lambda m: json.dumps(m).encode()),
                                    st.binary(max_size=40))),
                max_size=8).map(_zip)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@given(zips)
def test_read_bundle_on_made_up_zips_raises_bundle_error_only(data):
    try:
        read_bundle(data)
    except BundleError:
        pass


@pytest.mark.parametrize("manifest", [
    b'{"magic": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    json.dumps({"magic": "edge-slm-bundle", "format_version": 1,
                "min_runtime_version": "9" * 5000}).encode(),
    b'{"magic": "edge-slm-bundle", "format_version": 1, "members": {}, '
    b'"min_runtime_version": {"\\u00b9": null}}'], ids=["deep", "digits", "superscript"])
def test_read_bundle_on_a_hostile_manifest(manifest):
    with pytest.raises(BundleError):
        read_bundle(_zip([(MANIFEST, manifest)]))


# -- serve's settings --------------------------------------------------------------------------


def _toml_value(value) -> str:
    """`value` in TOML (strings escaped as JSON does, which TOML reads)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if value == value and abs(value) != float("inf") else "nan"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    return json.dumps("" if value is None else str(value))


def _option_names():
    from edge_slm.daemon.settings import OPTIONS

    return tuple(o.name for o in OPTIONS)


tomls = st.dictionaries(st.sampled_from(_option_names() + ("brokers",)),
                        st.one_of(json_values, texts, st.integers(-5, 70000),
                                  st.sampled_from(["mqtt://h:1", "mqtts://u:p@h", "5", "3.1.1",
                                                   "periodic", "~nobody-here/x", "a=b,c="])),
                        max_size=8).map(
    lambda d: "\n".join(f"{k} = {_toml_value(v)}" for k, v in d.items()).encode())


@given(st.one_of(tomls, mutated(EXAMPLE_TOML), st.binary(max_size=80),
                 st.sampled_from([b"bundle = " + b"[" * 100_000, b'bundle = "~0"',
                                  b"a." * 5000 + b"b = 1", b"[site_area]\nk = 1e999"])))
def test_settings_file_raises_config_error_only(folder, data):
    from edge_slm.daemon.settings import load_settings

    path = folder / "edge-slm.toml"
    path.write_bytes(data)
    try:
        load_settings(config_file=path)
    except ConfigError:
        pass


@given(st.dictionaries(st.sampled_from(_option_names()), st.one_of(
    texts, st.text("0123456789.,=-e", max_size=12)), max_size=6))
def test_settings_environment_raises_config_error_only(env):
    from edge_slm.daemon.settings import load_settings

    try:
        load_settings(environ={f"EDGE_SLM_{k.upper()}": v for k, v in env.items()})
    except ConfigError:
        pass


# -- homes -------------------------------------------------------------------------------------


ITEM_KEYS = ("name", "aliases", "floor", "area", "domain", "device_class", "attributes")
homes = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={
        section: st.one_of(json_values, st.lists(st.one_of(
            objects_with(ITEM_KEYS),
            st.fixed_dictionaries({"name": texts}, optional={
                "domain": st.sampled_from(["light", "lock", "nope"]),
                "area": st.sampled_from(["kitchen", "Kitchen"]), "floor": texts,
                "aliases": st.lists(texts, max_size=3)})), max_size=4))
        for section in ("floors", "areas", "entities")}))


@given(st.one_of(homes.map(lambda h: json.dumps(h).encode()), mutated(INVENTORY),
                 st.binary(max_size=80),
                 st.sampled_from([b"[" * 1500, b"a: &x [1]\nb: [*x, *x]\n", b"1: x\nb: y\n",
                                  b"? [a]\n: b\n", b"floors: !!python/object:os.system x\n",
                                  b"areas:\n- {name: a, floor: [1]}\n"])))
def test_home_file_raises_home_error_only(folder, data):
    path = folder / "home.yaml"
    path.write_bytes(data)
    try:
        load_inventory(path)
    except HomeError:
        pass


@pytest.mark.parametrize("data", [{"name": 1}, {"name": "Lamp", "area": {"a": 1}}])
def test_a_format_1_home_json_with_no_list_is_a_home_error(data):
    """Found by the soak run: a format-1 home.json whose names are not a list raised
    TypeError."""
    with pytest.raises(HomeError):
        home_from_bundle_json(data)


@given(homes)
def test_bundle_home_json_raises_home_error_only(data):
    for read in (home_from_bundle_json, inventory_from_dict):
        try:
            read(data)
        except HomeError:
            pass
