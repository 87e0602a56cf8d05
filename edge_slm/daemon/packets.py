"""A paho-mqtt 2 client that never holds an oversized PUBLISH in memory.

    client = BoundedClient(CallbackAPIVersion.VERSION2, client_id=..., max_packet_bytes=73728)
    ...                                   # on_message gets the message with an empty payload
    size = take_oversized(client, msg)    # its real size in bytes (None: a message as sent)

paho reads a whole packet before it looks at it, and asks the socket for all of it at once:
one 150 MB publish costs several times that in memory. MQTT 5 lets us say how large a packet
we take (CONNECT Maximum Packet Size, sent by `client.connect`) and a broker that honours it
drops larger ones for us; MQTT 3.1.1 has no such thing, and a broker may ignore it. So this
client looks at each PUBLISH's length before reading it: a larger one is read in small chunks
and thrown away, keeping only its topic and packet id. paho then sees the same message with an
empty payload and acknowledges it as usual (QoS 1 PUBACK, QoS 2 PUBREC/PUBCOMP), so the broker
never sends it again, and `take_oversized` tells the callback it was one.

This reaches into paho's packet reader (`_sock_recv`, `_in_packet`), which paho 2 has kept as
it is; `tests/test_daemon_limits.py` checks it on a real broker.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from paho.mqtt.client import MQTT_LOG_DEBUG, Client, MQTTMessage, MQTTv5

PUBLISH = 0x30
"""The PUBLISH packet type (the high four bits of the first byte)."""
CHUNK_BYTES = 64 * 1024
"""How much of a skipped packet is read at a time."""
CHUNKS_PER_READ = 16
"""Chunks skipped per network read before paho's loop gets a turn (keep-alives, stop())."""


class _Skip:
    """The PUBLISH being skipped: what is left to read, and its topic and packet id."""

    def __init__(self, packet: Any) -> None:  # paho's private _InPacket (a TypedDict)
        self.packet = packet  # paho's packet state this skip belongs to
        self.qos = (packet["command"] >> 1) & 3
        self.left = int(packet["remaining_length"])
        self.size = 1 + len(packet["remaining_count"]) + self.left  # the whole packet
        self.head = bytearray()  # topic length, topic, packet id

    def head_length(self) -> Optional[int]:
        """Bytes of topic length, topic and packet id (None until the length is read)."""
        if len(self.head) < 2:
            return None
        return 2 + int.from_bytes(self.head[:2], "big") + (2 if self.qos else 0)

    def keep(self, data: bytes) -> None:
        """Keep what belongs to the head; the rest is dropped."""
        for _ in range(2):  # the topic length first, then the topic and packet id
            want = self.head_length() or 2
            if len(self.head) < want:
                taken = want - len(self.head)
                self.head += data[:taken]
                data = data[taken:]


class BoundedClient(Client):
    """A paho client that skips, unread, every PUBLISH larger than `max_packet_bytes`."""

    def __init__(self, *args: Any, max_packet_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_packet_bytes = max_packet_bytes
        """Largest PUBLISH (the whole packet, in bytes) read into memory."""
        self.oversized: Dict[int, int] = {}
        """Packet id (0 for QoS 0) of a skipped message -> its size, until the callback."""
        self._skip: Optional[_Skip] = None

    def _sock_recv(self, bufsize: int) -> bytes:
        packet = self._in_packet
        skip = self._skip
        if skip is None or skip.packet is not packet:  # none, or one of a lost connection
            self._skip = skip = None
            size = 1 + len(packet["remaining_count"]) + packet["remaining_length"]
            if not (packet["have_remaining"] and packet["command"] & 0xF0 == PUBLISH
                    and size > self.max_packet_bytes and not packet["packet"]
                    and packet["to_process"] == packet["remaining_length"]):
                return super()._sock_recv(bufsize)
            self._skip = skip = _Skip(packet)
            self._easy_log(MQTT_LOG_DEBUG, "Skipping a PUBLISH of %d bytes (at most %d)",
                           skip.size, self.max_packet_bytes)
        for _ in range(CHUNKS_PER_READ):
            data = super()._sock_recv(min(CHUNK_BYTES, skip.left))  # BlockingIOError: later
            if not data:
                return data  # the connection is gone
            skip.keep(data)
            skip.left -= len(data)
            if skip.left == 0:
                return self._stand_in(skip)
        raise BlockingIOError()  # more to skip: paho's loop calls again

    def _stand_in(self, skip: _Skip) -> bytes:
        """The skipped PUBLISH's body as paho will read it: topic, packet id, no payload."""
        self._skip = None
        length = skip.head_length()
        if length is None or len(skip.head) < length:
            return b""  # not even a topic: a broken packet; paho drops the connection
        mid = int.from_bytes(skip.head[length - 2:length], "big") if skip.qos else 0
        self.oversized[mid] = skip.size
        body = bytes(skip.head[:length]) + (b"\x00" if self._protocol == MQTTv5 else b"")
        skip.packet["remaining_length"] = skip.packet["to_process"] = len(body)
        return body


def take_oversized(client: Any, msg: MQTTMessage) -> Optional[int]:
    """The size of `msg` when `client` skipped it as oversized (its payload is empty then);
    None for a message received whole."""
    sizes = getattr(client, "oversized", None)
    if not sizes or msg.payload:
        return None
    return sizes.pop(msg.mid if msg.qos else 0, None)
