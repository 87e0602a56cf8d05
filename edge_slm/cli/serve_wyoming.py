"""`edge-slm serve --wyoming tcp://HOST:PORT`: the Wyoming front end of `serve`, beside MQTT
(one process, one engine) or alone with `--no-mqtt`.

    edge-slm serve --wyoming tcp://0.0.0.0:10500 --no-mqtt
    edge-slm serve --broker mqtt://hub:1883 --wyoming tcp://0.0.0.0:10500 --wyoming-zeroconf

`serve.run` calls `check_fronts` first (what can be combined), then `start_wyoming` with the
engine its MQTT handler uses, or `run_wyoming_only`. SIGTERM or SIGINT stops, SIGHUP
reloads the bundle (--slots: also when another slot becomes active) and the next sentence is
answered by the new one.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from ..daemon.active_slot import ActiveSlotWatcher
    from ..daemon.served import ServedEngine
    from ..daemon.settings import ServeSettings
    from ..daemon.wyoming_server import WyomingService
    from ..runtime.engine import IntentEngine

RELOAD_POLL_S = 0.5
"""--no-mqtt: how often the main thread looks for a reload request (a flag a signal sets)."""


def check_fronts(settings: ServeSettings, embedded_broker: bool) -> None:
    """ConfigError for front ends that cannot go together: --no-mqtt without --wyoming (nothing
    to serve), --no-mqtt with --embedded-broker, --serial with --wyoming."""
    from ..errors import ConfigError

    def where(name: str) -> str:
        return settings.origins.get(name, "--" + name.replace("_", "-"))

    if settings.no_mqtt and settings.wyoming is None:
        raise ConfigError(f"{where('no_mqtt')}: nothing left to serve; give --wyoming "
                          "tcp://HOST:PORT too")
    if settings.no_mqtt and embedded_broker:
        raise ConfigError(f"{where('no_mqtt')}: an embedded broker is for MQTT; leave out "
                          "--embedded-broker")
    if settings.serial is not None and settings.wyoming is not None:
        raise ConfigError(f"{where('serial')} and {where('wyoming')}: a serial port and "
                          "Wyoming are not served together; run two `edge-slm serve`")
    if settings.wyoming_zeroconf is not None and settings.wyoming is None:
        raise ConfigError(f"{where('wyoming_zeroconf')}: nothing to announce without --wyoming "
                          "tcp://HOST:PORT")


def start_wyoming(settings: ServeSettings, source: ServedEngine) -> Optional[WyomingService]:
    """The Wyoming service of --wyoming, listening (and announced with --wyoming-zeroconf),
    answering with `source`'s engine; None without --wyoming. ConfigError when the address
    cannot be bound."""
    if settings.wyoming is None:
        return None
    from ..daemon import parse_wyoming_url
    from ..daemon.wyoming_handler import WyomingHandler
    from ..daemon.wyoming_server import WyomingServer, WyomingService

    host, port = parse_wyoming_url(settings.wyoming)
    server = WyomingServer(WyomingHandler(source, settings.daemon), host, port)
    service = WyomingService(server, settings.wyoming_zeroconf)
    service.start()
    return service


def run_wyoming_only(settings: ServeSettings, loader: Callable[[], IntentEngine],
                     watcher: Optional[ActiveSlotWatcher]) -> int:
    """--no-mqtt: serve Wyoming until SIGTERM or SIGINT; SIGHUP reloads."""
    from ..daemon.served import ServedEngine
    from .signals import handle_signals

    source = ServedEngine(loader())
    service = start_wyoming(settings, source)
    assert service is not None  # check_fronts: --no-mqtt needs --wyoming
    stop = threading.Event()
    reload = threading.Event()
    if watcher is not None:
        watcher.on_change = reload.set
        watcher.start()

    restore_signals = handle_signals(stop.set, reload.set)  # the main loop does the loading
    print(f"edge-slm serve: {source.served.model_id} on Wyoming {service.address} (no MQTT); "
          "SIGTERM or Ctrl-C stops, SIGHUP reloads", file=sys.stderr)
    try:
        while not stop.wait(RELOAD_POLL_S):
            if reload.is_set():
                reload.clear()
                source.reload(loader)
    finally:
        service.stop()
        if watcher is not None:
            watcher.stop()
        restore_signals()
    return 0
