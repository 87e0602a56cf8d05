"""Checking the Ed25519 signature of a model bundle: what a device needs to trust one.

    keys = load_trusted_keys(["keys/edge-slm-signing.pub.pem"])   # once, at start
    verify_bundle(read_bundle("model.slm"), keys)                  # SignatureError, or fine

The signature covers the exact bytes of the bundle's `manifest.json`, and the manifest holds
the SHA-256 and size of every other member, so one signature covers the whole bundle: a
changed member fails its checksum, a changed manifest fails the signature. It is stored in
the bundle as the extra member `manifest.sig` (64 bytes), which the manifest does not list.
Making keys and signing is `firmware_tools.signing` (`firmware-tools keygen`, `sign`).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Iterable, List, Tuple, Type, Union

from .bundle import MANIFEST, Bundle, BundleError, read_bundle

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE = "manifest.sig"
"""The member holding the Ed25519 signature of manifest.json."""


class SignatureError(BundleError):
    """A bundle is unsigned, signed by an untrusted key, or its signature does not verify."""


def crypto() -> Tuple[ModuleType, ModuleType, Type[Exception]]:
    """The `cryptography` modules signatures need: (ed25519, serialization, InvalidSignature);
    SignatureError when the package is missing."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as err:  # pragma: no cover - a runtime dependency
        raise SignatureError("signing needs the `cryptography` package: "
                             "pip install cryptography") from err
    return ed25519, serialization, InvalidSignature


def load_public(path: Union[str, Path]) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file."""
    ed25519, serialization, _ = crypto()
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as err:
        raise SignatureError(f"{path}: not a readable PEM public key ({err})") from err
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SignatureError(f"{path}: not an Ed25519 public key")
    return key


def load_trusted_keys(paths: Iterable[Union[str, Path]]) -> List[Ed25519PublicKey]:
    """The public keys of PEM files, read now (a bad file fails here, not at the first
    bundle)."""
    return [load_public(p) for p in paths]


def verify_bundle(bundle: Bundle, public_keys: Iterable[Ed25519PublicKey]) -> int:
    """Check a read bundle's signature against trusted public keys; the index of the key
    that signed it. SignatureError when unsigned or no key verifies it."""
    _, _, invalid = crypto()
    sig = bundle.extra.get(SIGNATURE)
    if sig is None:
        raise SignatureError(f"{bundle.where}: not signed (no {SIGNATURE}); sign it with "
                             "`firmware-tools sign`")
    keys = list(public_keys)
    if not keys:
        raise SignatureError("no trusted public key to verify against")
    for i, key in enumerate(keys):
        try:
            key.verify(sig, bundle.members[MANIFEST])
            return i
        except invalid:
            continue
    raise SignatureError(f"{bundle.where}: bad signature: not signed by a trusted key, or "
                         "the manifest was changed after signing")


def verify(source: Union[str, Path, bytes], pubkeys: Iterable[Union[str, Path]]) -> Bundle:
    """Read (checksums, format) and verify (signature) a bundle; the checked Bundle."""
    bundle = read_bundle(source)
    verify_bundle(bundle, load_trusted_keys(pubkeys))
    return bundle
