"""Ed25519 keys and signatures of model bundles: making them (checking is edge_slm's).

The signature covers the exact bytes of the bundle's `manifest.json`, and the manifest holds
the SHA-256 and size of every other member, so one signature covers the whole bundle: a
changed member fails its checksum, a changed manifest fails the signature. It is stored in
the bundle as the extra member `manifest.sig` (64 bytes), which the manifest does not list.
Verification lives with the device side, `edge_slm.signature`, and is re-exported here.

Signing also sets the manifest's `bundle_version` (a whole number, covered by the signature):
the one given, else the one the bundle has, else the time of signing in seconds. The agents
install a signed bundle only when its version is above the active one's (rollback
protection; docs/signing.md).

    firmware-tools keygen --out keys/          # keys/edge-slm-signing.key, ...pub.pem
    firmware-tools sign model.slm --key keys/edge-slm-signing.key [--bundle-version 7]
    firmware-tools verify model.slm --trusted-key keys/edge-slm-signing.pub.pem
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple, Union

from edge_slm.bundle import MANIFEST, Bundle, BundleError, read_bundle
from edge_slm.signature import (  # noqa: F401  (re-exported: verification is edge_slm's)
    SIGNATURE, SignatureError, crypto, load_public, verify, verify_bundle)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_NAME = "edge-slm-signing.key"
PUB_NAME = "edge-slm-signing.pub.pem"
VERSION_KEY = "bundle_version"
"""The manifest key of a bundle's release number: a whole number, higher for a later one."""
MAX_VERSION = 2 ** 63 - 1
"""The largest bundle version (it fits a signed 64-bit integer)."""


def _valid_version(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) \
        and 1 <= value <= MAX_VERSION


def bundle_version(bundle: Bundle) -> int:
    """The bundle's `bundle_version` (0 for a bundle signed without one, or never signed);
    BundleError when it is there but not a whole number from 1 to MAX_VERSION."""
    value = bundle.manifest.get(VERSION_KEY, 0)
    if value != 0 and not _valid_version(value):
        raise BundleError(f"{bundle.where}: {VERSION_KEY} {value!r} is not a whole number "
                          f"from 1 to {MAX_VERSION}")
    return int(value)


def keygen(out: Union[str, Path]) -> Tuple[Path, Path]:
    """Write a new private key (PEM, mode 0600) and its public key to the folder `out`;
    refuse to overwrite an existing key."""
    ed25519, serialization, _ = crypto()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key_path, pub_path = out / KEY_NAME, out / PUB_NAME
    for p in (key_path, pub_path):
        if p.exists():
            raise SignatureError(f"{p} exists: refusing to overwrite a key (move it away "
                                 "first)")
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    pub_path.write_bytes(public)
    return key_path, pub_path


def _load_private(path: Union[str, Path]) -> Ed25519PrivateKey:
    ed25519, serialization, _ = crypto()
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise SignatureError(f"{path}: not a readable unencrypted PEM private key ({err})") \
            from err
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 key")
    return key


def sign_bytes(bundle: bytes, key_path: Union[str, Path],
               version: Optional[int] = None) -> bytes:
    """The bundle with `manifest.sig` added (or replaced) and its `bundle_version` set to
    `version`, else kept, else the time now in seconds; the bundle is checked first."""
    if version is not None and not _valid_version(version):
        raise ValueError(f"bundle version {version!r}: must be a whole number from 1 to "
                         f"{MAX_VERSION}")
    checked = read_bundle(bundle)
    manifest_bytes = checked.members[MANIFEST]
    if version is None:
        version = bundle_version(checked) or int(time.time())
    if checked.manifest.get(VERSION_KEY) != version:
        manifest = dict(checked.manifest, **{VERSION_KEY: version})
        manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    signature = _load_private(key_path).sign(manifest_bytes)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as src, \
            zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename == MANIFEST:
                dst.writestr(info, manifest_bytes)
            elif info.filename != SIGNATURE:
                dst.writestr(info, src.read(info))
        dst.writestr(SIGNATURE, signature)
    return buf.getvalue()


def sign(path: Union[str, Path], key_path: Union[str, Path],
         version: Optional[int] = None) -> Path:
    """Sign the bundle file in place (written atomically); see `sign_bytes`."""
    path = Path(path)
    signed = sign_bytes(path.read_bytes(), key_path, version)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(signed)
    tmp.replace(path)
    return path
