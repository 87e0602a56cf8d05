"""Announcing the Wyoming service by zeroconf (mDNS), so Home Assistant discovers it.

    announcement = announce("edge-slm", "0.0.0.0", 10500)   # None when it cannot be made
    ...
    announcement.close()                                     # unregister on the way out

The service is `NAME._wyoming._tcp.local.` at this machine's address and the server's port,
as the `wyoming` library's zeroconf.py announces its servers (the idea, not its code: that
module is asyncio and we are threads). Home Assistant then offers to add it under Settings
-> Devices & services. `zeroconf` is an optional package (`pip install 'edge-slm[wyoming]'`):
without it the service still runs, and the log says once that it was not announced. A
server bound to a loopback address is not announced (no other machine could reach it); one
bound to every address (0.0.0.0, ::) is announced at the address the machine would send
multicast from. A name taken by another service is changed by zeroconf (`NAME (2)`).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any, Optional

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."
"""The service type Home Assistant's Wyoming integration browses for."""
MDNS_GROUP = "224.0.0.251"
"""The mDNS multicast group: the route to it tells the address to announce."""


def announce_address(host: str) -> Optional[str]:
    """The address to announce for a server bound to `host`: `host` itself, this machine's
    outgoing address for a wildcard one, None for a loopback one (or none found)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # a host name: announce what it resolves to
        try:
            ip = ipaddress.ip_address(socket.gethostbyname(host))
        except (OSError, ValueError):
            return None
    if ip.is_loopback:
        return None
    if not ip.is_unspecified:
        return str(ip)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect((MDNS_GROUP, 1))  # UDP: no packet is sent, only a route is chosen
        found = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if ipaddress.ip_address(found).is_loopback else found


class Announcement:
    """A registered zeroconf service; `close()` unregisters it."""

    def __init__(self, zeroconf: Any, info: Any) -> None:
        self.zeroconf = zeroconf
        """The `zeroconf.Zeroconf` that answers for it."""
        self.info = info
        """The `zeroconf.ServiceInfo` registered (its `name` is the one finally used)."""

    @property
    def name(self) -> str:
        """The full service name announced."""
        return str(self.info.name)

    def close(self) -> None:
        """Unregister the service and close zeroconf (errors are logged, never raised)."""
        try:
            self.zeroconf.unregister_service(self.info)
        except Exception:  # shutting down: log, go on
            _LOGGER.exception("zeroconf: unregistering %s failed", self.name)
        finally:
            self.zeroconf.close()


def announce(name: str, host: str, port: int,
             address: Optional[str] = None) -> Optional[Announcement]:
    """Register `name` for the server at `host`:`port` (announced at `address`, default
    `announce_address(host)`); None, said in the log, when zeroconf is not installed, the
    address cannot be announced or registering fails."""
    try:
        from zeroconf import ServiceInfo, Zeroconf
    except ImportError:
        _LOGGER.warning("zeroconf is not installed, so the Wyoming service is not announced "
                        "(pip install 'edge-slm[wyoming]'); add it in Home Assistant by host "
                        "and port instead")
        return None
    shown = address or announce_address(host)
    if shown is None:
        _LOGGER.warning("zeroconf: not announcing the Wyoming service on %s (a loopback or "
                        "unknown address no other machine can reach)", host)
        return None
    info = ServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}", port=port,
                       parsed_addresses=[shown])
    interfaces = [shown] if address is not None else None
    zc = Zeroconf(interfaces=interfaces) if interfaces else Zeroconf()
    try:
        zc.register_service(info, allow_name_change=True)
    except Exception as err:  # a network without multicast, a bad name
        _LOGGER.warning("zeroconf: announcing %s failed: %s", info.name, err)
        zc.close()
        return None
    _LOGGER.warning("zeroconf: announced %s at %s:%d", info.name, shown, port)
    return Announcement(zc, info)
