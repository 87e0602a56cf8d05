"""Serial ports by pyserial URL, opened with a read timeout so that the loops reading them
wake to run their timers and notice a stop.

    port = open_port("/dev/ttyS0", 115200, timeout=0.2)   # or socket://host:port, loop://

`serve --serial` reads lines with it; firmware_tools' flash sender and agents open their ports
with it too. A port that cannot be opened is a SerialPortError (an EdgeSlmError: the command
lines exit with status 2 and its message).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Protocol, Union

from ..errors import EdgeSlmError


class ByteStream(Protocol):
    """What the line and flash loops use of a port: pyserial's ports, firmware_tools' MQTT
    link and fault-injecting wrapper, test stand-ins. `in_waiting` and `flush` are used when
    there."""

    def read(self, size: int = ..., /) -> bytes: ...

    def write(self, data: bytes, /) -> Optional[int]: ...


class SerialLike(ByteStream, Protocol):
    """A port with a read timeout, that can be closed (what `open_port` takes and gives)."""

    timeout: Optional[float]

    def close(self) -> None: ...


class SerialPortError(EdgeSlmError):
    """A serial port (URL) that cannot be opened."""


def open_port(port: Union[str, SerialLike], baud: Optional[int], timeout: float) -> SerialLike:
    """A pyserial port for a URL (any `serial_for_url` URL; `baud` None: pyserial's default),
    or the serial-like object itself; its read timeout is set to `timeout`."""
    if isinstance(port, str):
        import serial

        try:
            kw: Dict[str, Any] = {"timeout": timeout}
            if baud:
                kw["baudrate"] = baud
            return serial.serial_for_url(port, **kw)
        except (serial.SerialException, ValueError, OSError) as err:
            raise SerialPortError(f"cannot open {port}: {err}") from err
    port.timeout = timeout
    return port
