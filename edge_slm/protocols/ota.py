"""Updates over MQTT: the topics of `firmware-tools ota` and `firmware-tools ota-agent`, and the
agent's status message.

    in:  edge-slm/<site>/ota/in       frames to the device (bytes of the serial flashing
                                      protocol, docs/serial-protocol.md; not JSON)
    out: edge-slm/<site>/ota/out      frames from the device
         edge-slm/<site>/ota/status   OtaStatus  (retained) {"state": "receiving", "received",
                                                 "total", "at"} while a transfer runs (every
                                                 second), then {"state": "installed" |
                                                 "refused", "detail", "code", "at"}

The site is the device's, one topic level. Keys are snake_case on the wire. Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from ..errors import ProtocolError
from .base import opt_int, opt_str, req_float, req_str, topic_level
from .native import _pattern, _SiteTopic

_OTA_IN = "edge-slm/{site_id}/ota/in"
_OTA_OUT = "edge-slm/{site_id}/ota/out"
_OTA_STATUS = "edge-slm/{site_id}/ota/status"

RECEIVING = "receiving"
INSTALLED = "installed"
REFUSED = "refused"
STATES = (RECEIVING, INSTALLED, REFUSED)
"""The states of an OtaStatus: a transfer running, then its result."""


def frames_to_device(site_id: str) -> str:
    """`edge-slm/<site>/ota/in`: the topic the sender's frames go out on."""
    return _OTA_IN.format(site_id=topic_level(site_id, "site id"))


def frames_from_device(site_id: str) -> str:
    """`edge-slm/<site>/ota/out`: the topic the device's frames come back on."""
    return _OTA_OUT.format(site_id=topic_level(site_id, "site id"))


@dataclass(frozen=True)
class OtaStatus(_SiteTopic):
    """The progress or the result of a device's latest transfer (retained)."""

    TOPIC = _OTA_STATUS
    _PATTERN = _pattern(_OTA_STATUS)

    state: str
    """"receiving", "installed" or "refused"."""
    at: float
    """When this was reported (Unix time, seconds)."""
    received: Optional[int] = None
    """receiving: bytes received so far."""
    total: Optional[int] = None
    """receiving: bytes of the whole bundle."""
    detail: Optional[str] = None
    """installed, refused: the agent's message (what was installed, or why not)."""
    code: Optional[str] = None
    """installed, refused: the protocol's status code in words ("installed and active",
    "signature ...")."""

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ProtocolError(f"OtaStatus: state must be one of {', '.join(STATES)}, "
                                f"not {self.state!r}")
        if self.state == RECEIVING:
            if self.received is None or self.total is None:
                raise ProtocolError("OtaStatus: 'receiving' needs 'received' and 'total'")
            if not 0 <= self.received <= self.total:
                raise ProtocolError(f"OtaStatus: received must be within 0..total, not "
                                    f"{self.received} of {self.total}")
            if self.detail is not None or self.code is not None:
                raise ProtocolError("OtaStatus: 'receiving' has no 'detail' or 'code'")
        else:
            if self.code is None:
                raise ProtocolError(f"OtaStatus: {self.state!r} needs its 'code'")
            if self.received is not None or self.total is not None:
                raise ProtocolError(f"OtaStatus: {self.state!r} has no 'received' or 'total'")

    @classmethod
    def progress(cls, received: int, total: int, at: float) -> "OtaStatus":
        """A transfer running: `received` of `total` bytes at Unix time `at`."""
        return cls(RECEIVING, round(at, 3), received=received, total=total)

    @classmethod
    def result(cls, installed: bool, code: str, detail: str, at: float) -> "OtaStatus":
        """A transfer's outcome."""
        return cls(INSTALLED if installed else REFUSED, round(at, 3), detail=detail, code=code)

    def to_dict(self) -> Dict[str, Any]:
        """The wire object: state, the fields of that state, at."""
        out: Dict[str, Any] = {"state": self.state}
        if self.state == RECEIVING:
            out.update(received=self.received, total=self.total)
        else:
            out.update(detail=self.detail, code=self.code)
        out["at"] = self.at
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "OtaStatus":
        """Rebuild from the wire object."""
        w = cls.__name__
        received, total = opt_int(obj, "received", w), opt_int(obj, "total", w)
        return cls(req_str(obj, "state", w), req_float(obj, "at", w), received=received,
                   total=total, detail=opt_str(obj, "detail", w), code=opt_str(obj, "code", w))


MESSAGES = (OtaStatus,)
"""Every message class this module speaks."""
