"""Checking the Ed25519 signature of a model bundle: what a device needs to trust one.

    keys = load_trusted_keys(["keys/edge-slm-signing.pub.pem"])   # once, at start
    bundle = read_verified("model.slm", keys)                      # SignatureError, or fine

The signature covers the exact bytes of the bundle's `manifest.json`, and the manifest holds
the SHA-256 and size of every other member, so one signature covers the whole bundle: a
changed member fails its checksum, a changed manifest fails the signature. It is stored in
the bundle as the extra member `manifest.sig` (64 bytes), which the manifest does not list.
Making keys and signing is `firmware_tools.signing` (`firmware-tools keygen`, `sign`).

`read_verified` checks the signature over the manifest's bytes before anything is parsed
(only the zip directory and the sizes it declares are looked at first), then the manifest and
the members' checksums: a hostile unsigned file never reaches the JSON parser.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Iterable, List, Optional, Tuple, Type, Union

from .bundle import MANIFEST, SIGNATURE, Bundle, BundleError, read_bundle

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


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


def verify_manifest(manifest: bytes, signature: Optional[bytes],
                    public_keys: Iterable[Ed25519PublicKey], where: str = "bundle") -> int:
    """Check the signature of a manifest's exact bytes against trusted public keys; the index
    of the key that signed it. SignatureError when unsigned or no key verifies it."""
    _, _, invalid = crypto()
    if signature is None:
        raise SignatureError(f"{where}: not signed (no {SIGNATURE}); sign it with "
                             "`firmware-tools sign`")
    keys = list(public_keys)
    if not keys:
        raise SignatureError("no trusted public key to verify against")
    for i, key in enumerate(keys):
        try:
            key.verify(signature, manifest)
            return i
        except invalid:
            continue
    raise SignatureError(f"{where}: bad signature: not signed by a trusted key, or "
                         "the manifest was changed after signing")


def verify_bundle(bundle: Bundle, public_keys: Iterable[Ed25519PublicKey]) -> int:
    """Check a read bundle's signature against trusted public keys; the index of the key
    that signed it. SignatureError when unsigned or no key verifies it. Reading a file from
    outside: `read_verified`, which checks before parsing."""
    return verify_manifest(bundle.members[MANIFEST], bundle.extra.get(SIGNATURE), public_keys,
                           bundle.where)


def read_verified(source: Union[str, Path, bytes],
                  public_keys: Iterable[Ed25519PublicKey]) -> Bundle:
    """Read a bundle (a path or its bytes) signed by one of `public_keys`, checking the
    signature before the manifest is parsed; SignatureError (unsigned, untrusted or changed),
    BundleError (anything else wrong)."""
    keys = list(public_keys)
    if not keys:
        raise SignatureError("no trusted public key to verify against")

    def check(manifest: bytes, signature: Optional[bytes], where: str) -> None:
        verify_manifest(manifest, signature, keys, where)

    return read_bundle(source, check_signature=check)


def verify(source: Union[str, Path, bytes], pubkeys: Iterable[Union[str, Path]]) -> Bundle:
    """Read (signature first, then format and checksums) a bundle signed by one of the keys
    in the PEM files `pubkeys`; the checked Bundle. The key files are read when the signature
    is checked, so a missing or damaged bundle file is reported first."""
    paths = list(pubkeys)

    def check(manifest: bytes, signature: Optional[bytes], where: str) -> None:
        verify_manifest(manifest, signature, load_trusted_keys(paths), where)

    return read_bundle(source, check_signature=check)
