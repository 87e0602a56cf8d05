"""The model bundle (`.slm`): one zip file with everything the runtime needs, and its checker.

    manifest.json    magic, format version, sha256 and size of every other member,
                     quantization, the gate's metrics, minimum runtime version, provenance,
                     golden inputs with their expected outputs
    model.tflite     the student (float, int8 or int4)
    tokenizer.json   the WordPiece vocabulary (read by edge_slm.tokenizer)
    labels.json      intents (index 0 is "no intent") and BIO slot tags
    config.json      model config, calibration (temperature, threshold), engine settings
    home.json        the default home's device names, areas and floors (for resolution)
    values.json      value tables for normalization (colours, number words, ...)

`read_bundle` is the one reader, and it expects hostile files: it checks the zip's directory
(member count, duplicate names, compression, declared sizes) before it decompresses anything,
checks a signature (when it is given a check) before it parses the manifest, parses JSON within
limits of nesting and number length, decompresses only the members the manifest lists, in
chunks and never past their declared sizes, and refuses a wrong magic or format version, a
missing or unlisted member, a size or checksum mismatch, a runtime older than the bundle
needs. `IntentEngine.load` then checks the golden outputs (docs/bundle.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from . import __version__
from .errors import EdgeSlmError

MAGIC = "edge-slm-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED_MEMBERS = ("model.tflite", "tokenizer.json", "labels.json", "config.json",
                    "home.json", "values.json")
SIGNATURE = "manifest.sig"
"""The one member the manifest does not list: the Ed25519 signature of manifest.json."""
#: Largest bundle file the reader accepts (the shipped ones are under 1 MB, float ones ~3 MB).
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
#: Most bytes the members of a bundle may unpack to, all together (checked on the sizes the
#: zip declares before anything is decompressed, and again while decompressing).
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
#: Most members a bundle may have (it has 7 or 8).
MAX_MEMBERS = 32
#: Largest zip directory read (a bundle's is under 1 KB; zipfile holds it all in memory).
MAX_DIRECTORY_BYTES = 64 * 1024
#: Largest manifest.json (the shipped ones are ~17 KB, golden cases included).
MAX_MANIFEST_BYTES = 1024 * 1024
#: Largest signature member (an Ed25519 signature is 64 bytes).
MAX_SIGNATURE_BYTES = 1024
#: Deepest nesting of arrays and objects in a JSON member (the shipped ones reach 5).
MAX_JSON_DEPTH = 32
#: Longest number in a JSON member, in characters (the shipped ones reach 20).
MAX_NUMBER_CHARS = 64
#: Longest `min_runtime_version`.
MAX_VERSION_CHARS = 32
#: Bytes decompressed at a time.
READ_CHUNK = 1024 * 1024

SignatureCheck = Callable[[bytes, Optional[bytes], str], None]
"""Checks (manifest.json's bytes, the signature member's bytes or None, the bundle's name in
messages) before the manifest is parsed; raises (a BundleError) to refuse the bundle."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")


class BundleError(EdgeSlmError):
    """A bundle is not one, is damaged, tampered with or too new for this runtime."""


def sha256(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def _short(value: Any) -> str:
    """`value`'s repr, cut to 40 characters (a hostile manifest's values go into messages)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:36] + " ..."


def _said(name: str) -> str:
    """A member's name for a message: as it is when short and printable, else `_short`."""
    return name if len(name) <= 80 and name.isprintable() else _short(name)


def _json_depth_over(text: str, limit: int) -> bool:
    """Whether arrays and objects in JSON `text` nest deeper than `limit` (strings skipped);
    unbalanced brackets are left to the parser."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    run = re.compile(r"[\[{]{%d}" % (limit + 1))  # that many openers in a row: too deep
    for _ in range(limit):  # each round removes the innermost pairs: one level
        if run.search(brackets):
            return True
        inner = brackets.replace("[]", "").replace("{}", "")
        if inner == brackets:
            return False  # empty, or unbalanced
        brackets = inner
    return bool(brackets) and brackets.replace("[]", "").replace("{}", "") != brackets


def _bounded(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            raise ValueError(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
        return kind(text)
    return parse


def load_json(data: bytes, what: str) -> Any:
    """JSON from a bundle's bytes, parsed as hostile input: BundleError (naming `what`) for
    invalid UTF-8 or JSON, nesting deeper than MAX_JSON_DEPTH, numbers longer than
    MAX_NUMBER_CHARS."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BundleError(f"{what} is not UTF-8 ({err})") from err
    if _json_depth_over(text, MAX_JSON_DEPTH):
        raise BundleError(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_int=_bounded(int), parse_float=_bounded(float))
    except RecursionError as err:  # not reached past the depth check; kept as a guard
        raise BundleError(f"{what}: JSON nested too deep") from err
    except ValueError as err:
        raise BundleError(f"{what} is not valid JSON ({err})") from err


def _version_tuple(v: str) -> tuple:
    parts = []
    for p in str(v).split("."):
        digits = "".join(ch for ch in p if "0" <= ch <= "9")  # ASCII: int() reads no other
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


@dataclass
class Bundle:
    """A checked bundle held in memory."""

    manifest: Dict[str, Any]
    """The parsed manifest.json."""
    members: Dict[str, bytes]
    """Every member's bytes, manifest.json included."""
    path: Optional[str] = None
    """Where it was read from, when from a file."""
    extra: Dict[str, Any] = field(default_factory=dict)
    """The members the manifest does not list: the signature (`manifest.sig`), if any."""

    def json(self, name: str) -> Any:
        """A JSON member, parsed within the limits of `load_json`."""
        if name not in self.members:
            raise BundleError(f"{self.where}: member {name} is missing")
        return load_json(self.members[name], f"{self.where}: member {name}")

    @property
    def where(self) -> str:
        """The bundle's name in messages."""
        return self.path or "bundle"

    @property
    def model(self) -> bytes:
        """The TFLite flatbuffer."""
        return self.members["model.tflite"]

    @property
    def quantization(self) -> str:
        """"float", "int8", "int4" or "int8-full"."""
        return str(self.manifest.get("quantization", "?"))

    @property
    def model_id(self) -> str:
        """A short id: language, quantization and the model's hash prefix."""
        return str(self.manifest.get("model_id", "?"))


def write_bundle(out: Union[str, Path], members: Mapping[str, bytes],
                 manifest: Mapping[str, Any]) -> Path:
    """Write a bundle: `members` (the required ones at least) plus a manifest built from
    `manifest` with the magic, format version and every member's hash and size added."""
    missing = [m for m in REQUIRED_MEMBERS if m not in members]
    if missing:
        raise BundleError(f"cannot write a bundle without {', '.join(missing)}")
    full = dict(manifest)
    full.update({"magic": MAGIC, "format_version": FORMAT_VERSION,
                 "members": {name: {"sha256": sha256(data), "bytes": len(data)}
                             for name, data in sorted(members.items())}})
    full.setdefault("min_runtime_version", __version__)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr(MANIFEST, json.dumps(full, indent=1, sort_keys=True))
        for name, data in sorted(members.items()):
            zf.writestr(name, data)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out)
    return out


def _load(source: Union[str, Path, bytes], where: str) -> bytes:
    """The bytes of a bundle file (at most MAX_BUNDLE_BYTES), starting as a zip does."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise BundleError(f"{where}: no such bundle file (list the shipped ones with "
                              "`edge-slm models`)")
        if path.stat().st_size > MAX_BUNDLE_BYTES:
            raise BundleError(f"{where}: {path.stat().st_size} bytes, larger than any bundle "
                              f"({MAX_BUNDLE_BYTES})")
        data = path.read_bytes()
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"{where}: {len(data)} bytes, larger than any bundle "
                          f"({MAX_BUNDLE_BYTES})")
    if not data.startswith(b"PK\x03\x04"):
        raise BundleError(f"{where}: not an edge-slm bundle (not a zip file)")
    return data


def _check_directory(data: bytes, where: str) -> None:
    """The zip's end record, found as zipfile finds it, read before zipfile parses the
    directory it points to: at most MAX_MEMBERS members in at most MAX_DIRECTORY_BYTES, no
    zip64 (which could declare any size)."""
    end = len(data) - 22
    if not (data[end:end + 4] == b"PK\x05\x06" and data[-2:] == b"\0\0"):
        end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65536 - 22))
    if end < 0 or len(data) < end + 22:
        raise BundleError(f"{where}: damaged or truncated bundle (no zip directory)")
    count, size = struct.unpack("<HL", data[end + 10:end + 16])
    if end >= 20 and data[end - 20:end - 16] == b"PK\x06\x07":
        raise BundleError(f"{where}: a zip64 file: no bundle is one")
    if count > MAX_MEMBERS or size > MAX_DIRECTORY_BYTES:
        raise BundleError(f"{where}: {count} members in a {size}-byte directory: a bundle has "
                          f"at most {MAX_MEMBERS} members")


def _check_members(infos: List[zipfile.ZipInfo], where: str) -> None:
    """Count, names, encryption, compression and declared sizes, before any decompression."""
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"{where}: {len(infos)} members: a bundle has at most {MAX_MEMBERS}")
    seen = set()
    for info in infos:
        name = info.filename
        if name in seen:
            raise BundleError(f"{where}: member {_said(name)} is in the zip more than once")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise BundleError(f"{where}: member {_said(name)} is encrypted: no bundle member is")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError(f"{where}: member {_said(name)} uses compression method "
                              f"{info.compress_type}; bundles are stored or deflated")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED_BYTES:
        raise BundleError(f"{where}: members would unpack to {total} bytes, more than a bundle "
                          f"may ({MAX_UNPACKED_BYTES}): refused unread (a zip bomb?)")


def _unpack(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, where: str) -> bytes:
    """A member's bytes, decompressed in chunks and refused as soon as they pass `limit`."""
    chunks: List[bytes] = []
    got = 0
    with zf.open(info) as fh:
        while True:
            chunk = fh.read(READ_CHUNK)
            if not chunk:
                return b"".join(chunks)
            got += len(chunk)
            if got > limit:
                raise BundleError(f"{where}: member {_said(info.filename)} unpacks to more than "
                                  f"{limit} bytes")
            chunks.append(chunk)


def _check_version(manifest: Mapping[str, Any], runtime_version: str, where: str) -> None:
    need = manifest.get("min_runtime_version", "0")
    if not (isinstance(need, str) and len(need) <= MAX_VERSION_CHARS
            and _VERSION.match(need)):
        raise BundleError(f"{where}: min_runtime_version {_short(need)} is not a version "
                          f"(such as 0.1.0, at most {MAX_VERSION_CHARS} characters)")
    if _version_tuple(need) > _version_tuple(runtime_version):
        raise BundleError(f"{where}: needs edge-slm >= {need}, this is {runtime_version} "
                          "(install a newer one: a wheel built from an up-to-date checkout, "
                          "docs/raspberry-pi.md)")


def read_bundle(source: Union[str, Path, bytes], runtime_version: str = __version__,
                check_signature: Optional[SignatureCheck] = None) -> Bundle:
    """Read and check a bundle (a path or its bytes); raise BundleError saying what is wrong.

    The order (docs/bundle.md): the file's size; the zip directory (member count, names,
    compression, declared sizes), before anything is decompressed; manifest.json and the
    signature member, within their limits; `check_signature`, when given, before the manifest
    is parsed; the manifest (magic, format version, runtime version, member list); then only
    the listed members, each checked against its size and SHA-256."""
    where = "bundle" if isinstance(source, (bytes, bytearray)) else str(source)
    data = _load(source, where)
    _check_directory(data, where)
    members: Dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            _check_members(infos, where)
            by_name = {i.filename: i for i in infos}
            if MANIFEST not in by_name:
                raise BundleError(f"{where}: no {MANIFEST}: not an edge-slm bundle")
            members[MANIFEST] = _unpack(zf, by_name[MANIFEST], MAX_MANIFEST_BYTES, where)
            sig = (_unpack(zf, by_name[SIGNATURE], MAX_SIGNATURE_BYTES, where)
                   if SIGNATURE in by_name else None)
            if check_signature is not None:
                check_signature(members[MANIFEST], sig, where)
            manifest = load_json(members[MANIFEST], f"{where}: {MANIFEST}")
            listed = _check_manifest(manifest, by_name, runtime_version, where)
            for name, info in listed.items():
                body = _unpack(zf, by_name[name], info["bytes"], where)
                if len(body) != info["bytes"]:
                    raise BundleError(f"{where}: member {_said(name)} has {len(body)} bytes, "
                                      f"manifest says {info['bytes']}")
                if info["sha256"] != sha256(body):
                    raise BundleError(f"{where}: member {_said(name)} fails its SHA-256 check "
                                      "(damaged or tampered with)")
                members[name] = body
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            ValueError, RuntimeError, NotImplementedError) as err:
        raise BundleError(f"{where}: damaged or truncated bundle ({err})") from err
    extra = {SIGNATURE: sig} if sig is not None else {}
    return Bundle(manifest, members, None if where == "bundle" else where, extra)


def _check_manifest(manifest: Any, in_zip: Mapping[str, zipfile.ZipInfo],
                    runtime_version: str, where: str) -> Dict[str, Dict[str, Any]]:
    """Magic, format and runtime version, and the member list against the zip's members:
    {name: {"sha256", "bytes"}} of the listed members, every one present with its declared
    size; every member of the zip but the manifest and the signature listed."""
    magic = manifest.get("magic") if isinstance(manifest, dict) else None
    if magic != MAGIC:
        raise BundleError(f"{where}: wrong magic {_short(magic)} (expected {MAGIC!r}): not "
                          "an edge-slm bundle")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"{where}: bundle format version {_short(version)}; this runtime "
                          f"reads version {FORMAT_VERSION} (convert the model again, or upgrade "
                          "edge-slm)")
    _check_version(manifest, runtime_version, where)
    listed = manifest.get("members")
    if not isinstance(listed, dict):
        raise BundleError(f"{where}: manifest lists no members")
    for name in REQUIRED_MEMBERS:
        if name not in listed:
            raise BundleError(f"{where}: manifest does not list required member {name}")
    for name in in_zip:
        if name not in listed and name not in (MANIFEST, SIGNATURE):
            raise BundleError(f"{where}: member {_said(name)} is not listed in the manifest: "
                              "refused unread")
    for name, info in listed.items():
        if name in (MANIFEST, SIGNATURE):
            raise BundleError(f"{where}: manifest lists {name}, which it cannot cover")
        if name not in in_zip:
            raise BundleError(f"{where}: member {_said(name)} is missing")
        size = info.get("bytes") if isinstance(info, dict) else None
        if not (isinstance(size, int) and isinstance(info.get("sha256"), str)):
            raise BundleError(f"{where}: manifest entry of member {_said(name)} is not "
                              '{"sha256": hex, "bytes": n}')
        if in_zip[name].file_size != size:
            raise BundleError(f"{where}: member {_said(name)} has {in_zip[name].file_size} bytes, "
                              f"manifest says {size}")
    return listed
