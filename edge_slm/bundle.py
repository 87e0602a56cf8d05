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

`read_bundle` is the one reader: it refuses a file that is not a zip, a wrong magic or format
version, a missing member, a size or checksum mismatch, a runtime older than the bundle
needs; `IntentEngine.load` then checks the golden outputs (docs/bundle.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from . import __version__
from .errors import EdgeSlmError

MAGIC = "edge-slm-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED_MEMBERS = ("model.tflite", "tokenizer.json", "labels.json", "config.json",
                    "home.json", "values.json")
#: Largest bundle the reader accepts (a corrupt header must not make it read gigabytes).
MAX_BUNDLE_BYTES = 64 * 1024 * 1024


class BundleError(EdgeSlmError):
    """A bundle is not one, is damaged, tampered with or too new for this runtime."""


def sha256(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def _version_tuple(v: str) -> tuple:
    parts = []
    for p in str(v).split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
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
    """Members other than the required ones (e.g. a signature), by name."""

    def json(self, name: str) -> Any:
        """A JSON member, parsed."""
        try:
            return json.loads(self.members[name].decode("utf-8"))
        except (KeyError, UnicodeDecodeError, ValueError) as err:
            raise BundleError(f"{self.where}: member {name} is not valid JSON ({err})") from err

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


def read_bundle(source: Union[str, Path, bytes], runtime_version: str = __version__) -> Bundle:
    """Read and check a bundle (a path or its bytes); raise BundleError saying what is wrong."""
    where = "bundle" if isinstance(source, (bytes, bytearray)) else str(source)
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
    if not data.startswith(b"PK\x03\x04"):
        raise BundleError(f"{where}: not an edge-slm bundle (not a zip file)")
    members: Dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if info.file_size > MAX_BUNDLE_BYTES:
                    raise BundleError(f"{where}: member {info.filename} claims "
                                      f"{info.file_size} bytes")
                members[info.filename] = zf.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            ValueError) as err:
        raise BundleError(f"{where}: damaged or truncated bundle ({err})") from err
    if MANIFEST not in members:
        raise BundleError(f"{where}: no {MANIFEST}: not an edge-slm bundle")
    try:
        manifest = json.loads(members[MANIFEST].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise BundleError(f"{where}: {MANIFEST} is not valid JSON ({err})") from err
    magic = manifest.get("magic") if isinstance(manifest, dict) else None
    if magic != MAGIC:
        raise BundleError(f"{where}: wrong magic {magic!r} (expected {MAGIC!r}): not an "
                          "edge-slm bundle")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"{where}: bundle format version {version!r}; this runtime reads "
                          f"version {FORMAT_VERSION} (convert the model again, or upgrade "
                          "edge-slm)")
    need = str(manifest.get("min_runtime_version", "0"))
    if _version_tuple(need) > _version_tuple(runtime_version):
        raise BundleError(f"{where}: needs edge-slm >= {need}, this is {runtime_version} "
                          "(pip install -U edge-slm)")
    listed = manifest.get("members")
    if not isinstance(listed, dict):
        raise BundleError(f"{where}: manifest lists no members")
    for name in REQUIRED_MEMBERS:
        if name not in listed:
            raise BundleError(f"{where}: manifest does not list required member {name}")
    for name, info in listed.items():
        if name not in members:
            raise BundleError(f"{where}: member {name} is missing")
        body = members[name]
        if not isinstance(info, dict) or info.get("bytes") != len(body):
            raise BundleError(f"{where}: member {name} has {len(body)} bytes, manifest says "
                              f"{info.get('bytes') if isinstance(info, dict) else None}")
        if info.get("sha256") != sha256(body):
            raise BundleError(f"{where}: member {name} fails its SHA-256 check (damaged or "
                              "tampered with)")
    extra = {n: b for n, b in members.items() if n != MANIFEST and n not in listed}
    return Bundle(manifest, members, None if where == "bundle" else where, extra)
