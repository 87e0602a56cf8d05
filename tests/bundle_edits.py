"""Editing a bundle's zip members in tests (tampering on purpose)."""

from __future__ import annotations

import io
import zipfile


def rezip(blob: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    """`blob` with its members passed through `change(members: dict)` and zipped again."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    change(members)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
