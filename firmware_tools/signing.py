"""Ed25519 signatures of model bundles.

The signature covers the exact bytes of the bundle's `manifest.json`, and the manifest holds
the SHA-256 and size of every other member, so one signature covers the whole bundle: a
changed member fails its checksum, a changed manifest fails the signature. It is stored in
the bundle as the extra member `manifest.sig` (64 bytes), which the manifest does not list.

    firmware-tools keygen --out keys/          # keys/edge-slm-signing.key, ...pub.pem
    firmware-tools sign model.slm --key keys/edge-slm-signing.key
    firmware-tools verify model.slm --pubkey keys/edge-slm-signing.pub.pem
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Iterable, List, Tuple, Union

from edge_slm.bundle import MANIFEST, Bundle, BundleError, read_bundle

SIGNATURE = "manifest.sig"
"""The member holding the Ed25519 signature of manifest.json."""
KEY_NAME = "edge-slm-signing.key"
PUB_NAME = "edge-slm-signing.pub.pem"


class SignatureError(BundleError):
    """A bundle is unsigned, signed by an untrusted key, or its signature does not verify."""


def _crypto():  # type: ignore[no-untyped-def]
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as err:  # pragma: no cover - a runtime dependency
        raise SignatureError("signing needs the `cryptography` package: "
                             "pip install cryptography") from err
    return ed25519, serialization, InvalidSignature


def keygen(out: Union[str, Path]) -> Tuple[Path, Path]:
    """Write a new private key (PEM, mode 0600) and its public key to the folder `out`;
    refuse to overwrite an existing key."""
    ed25519, serialization, _ = _crypto()
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


def _load_private(path: Union[str, Path]):  # type: ignore[no-untyped-def]
    ed25519, serialization, _ = _crypto()
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise SignatureError(f"{path}: not a readable unencrypted PEM private key ({err})") \
            from err
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 key")
    return key


def load_public(path: Union[str, Path]):  # type: ignore[no-untyped-def]
    """An Ed25519 public key from a PEM file."""
    ed25519, serialization, _ = _crypto()
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as err:
        raise SignatureError(f"{path}: not a readable PEM public key ({err})") from err
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SignatureError(f"{path}: not an Ed25519 public key")
    return key


def sign_bytes(bundle: bytes, key_path: Union[str, Path]) -> bytes:
    """The bundle with `manifest.sig` added (or replaced); the bundle is checked first."""
    checked = read_bundle(bundle)
    signature = _load_private(key_path).sign(checked.members[MANIFEST])
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as src, \
            zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != SIGNATURE:
                dst.writestr(info, src.read(info))
        dst.writestr(SIGNATURE, signature)
    return buf.getvalue()


def sign(path: Union[str, Path], key_path: Union[str, Path]) -> Path:
    """Sign the bundle file in place (written atomically)."""
    path = Path(path)
    signed = sign_bytes(path.read_bytes(), key_path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(signed)
    tmp.replace(path)
    return path


def verify_bundle(bundle: Bundle, public_keys: Iterable[object]) -> int:
    """Check a read bundle's signature against trusted public keys; the index of the key
    that signed it. SignatureError when unsigned or no key verifies it."""
    _, _, invalid = _crypto()
    sig = bundle.extra.get(SIGNATURE)
    if sig is None:
        raise SignatureError(f"{bundle.where}: not signed (no {SIGNATURE}); sign it with "
                             "`firmware-tools sign`")
    keys: List[object] = list(public_keys)
    if not keys:
        raise SignatureError("no trusted public key to verify against")
    for i, key in enumerate(keys):
        try:
            key.verify(sig, bundle.members[MANIFEST])  # type: ignore[attr-defined]
            return i
        except invalid:
            continue
    raise SignatureError(f"{bundle.where}: bad signature: not signed by a trusted key, or "
                         "the manifest was changed after signing")


def verify(source: Union[str, Path, bytes], pubkeys: Iterable[Union[str, Path]]) -> Bundle:
    """Read (checksums, format) and verify (signature) a bundle; the checked Bundle."""
    bundle = read_bundle(source)
    verify_bundle(bundle, [load_public(p) for p in pubkeys])
    return bundle
