"""Protocol messages: what goes over the wire, as frozen dataclasses (stdlib only).

`hermes` is the Rhasspy 2.5 / Snips NLU protocol, `native` the edge-slm JSON API. Each message
has `to_payload()`, `from_payload(bytes)` (raising `ProtocolError`), `topic(**kw)` and
`is_topic(topic)`. The transport (paho, MQTT 5 properties) lives in `edge_slm.daemon`.
"""

from __future__ import annotations

from ..errors import ProtocolError
from .base import Message

__all__ = ["Message", "ProtocolError"]
