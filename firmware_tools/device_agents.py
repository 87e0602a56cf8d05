"""`firmware-tools serial-agent` and `firmware-tools ota-agent`: the device side of
`firmware-tools flash` and `firmware-tools ota`.

    firmware-tools serial-agent --port /dev/ttyS0 --slots /var/lib/edge-slm/slots \\
        --trusted-key keys/edge-slm-signing.pub.pem
    firmware-tools ota-agent --broker mqtt://hub.local --site-id kitchen \\
        --slots /var/lib/edge-slm/slots --trusted-key keys/edge-slm-signing.pub.pem
    firmware-tools ota-agent --broker mqtts://kitchen:secret@hub.local --tls-ca ca.pem \\
        --mqtt-version 3.1.1 --site-id kitchen --slots /var/lib/edge-slm/slots \\
        --trusted-key keys/edge-slm-signing.pub.pem

Both receive bundles (resuming interrupted transfers) and install each one A/B: the SHA-256
of the whole bundle, its format, its signature by a --trusted-key (or none, only with an
explicit --insecure-unsigned) and its golden self-test must pass before `SLOTS/active`
switches; otherwise the old model stays active and the sender is told why. One line per
finished transfer on stdout. The OTA agent speaks the serial agent's protocol
(docs/serial-protocol.md) over the topics `edge-slm/<site>/ota/in` and `/ota/out`; progress
(at a transfer's start, then every second) and the result of each transfer are published,
retained, on `edge-slm/<site>/ota/status`. Serve the active slot with `edge-slm serve --bundle
SLOTS/<active>.slm` and send it SIGHUP after an update.

These were `edge-slm serial-agent` and `edge-slm ota-agent`; they live here so that edge_slm
never imports firmware_tools (docs/architecture.md, Layers).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .agent import Agent
    from .serial_protocol import Status

#: Seconds between two progress reports on the status topic during a transfer.
PROGRESS_EVERY_S = 1.0


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `serial-agent` and `ota-agent`."""
    from edge_slm.daemon.options import add_link_args, add_site_id_arg

    from .flash import add_serial_args

    p = sub.add_parser("serial-agent", help="receive and install bundles over a serial link",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_serial_args(p)
    add_agent_args(p)
    p = sub.add_parser("ota-agent", help="receive and install bundles over MQTT",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_link_args(p)
    add_site_id_arg(p, help="this device's site id")
    add_agent_args(p)


def add_agent_args(p: argparse.ArgumentParser) -> None:
    """`--slots`, `--trusted-key`, `--insecure-unsigned`, `--allow-downgrade` and `--once`,
    shared by both agents."""
    from edge_slm.daemon.options import add_trusted_key_arg

    p.add_argument("--slots", type=Path, required=True,
                   help="folder of the A/B slots (a.slm, b.slm, active)")
    add_trusted_key_arg(p, help="trusted public key (PEM); repeat for several; only bundles "
                                "one of them signed are installed (this or "
                                "--insecure-unsigned is required)")
    p.add_argument("--insecure-unsigned", action="store_true",
                   help="install bundles without checking any signature: anyone who can "
                        "reach the port or publish on the broker installs any model "
                        "(development only)")
    p.add_argument("--allow-downgrade", action="store_true",
                   help="install a signed bundle even when its bundle version is not above "
                        "the active one's (rolling back on purpose)")
    p.add_argument("--once", action="store_true",
                   help="exit after one transfer (status 0 if installed, 2 if refused)")


def _status_line(status: Status) -> str:
    from .serial_protocol import STATUS_TEXT

    return f"{STATUS_TEXT.get(status.code, status.code)}: {status.detail}"


def make_agent(args: argparse.Namespace) -> Agent:
    """The `Agent` of the options: signed bundles only (`--trusted-key`), or explicitly
    none checked (`--insecure-unsigned`); ConfigError for neither or both."""
    from edge_slm.errors import ConfigError
    from edge_slm.signature import load_trusted_keys

    from .agent import Agent
    from .slots import SlotStore

    if not args.trusted_key and not args.insecure_unsigned:
        raise ConfigError("no --trusted-key: give the public key (PEM) that bundles must be "
                          "signed with, or --insecure-unsigned to let anyone who reaches this "
                          "agent install any bundle")
    if args.trusted_key and args.insecure_unsigned:
        raise ConfigError("--insecure-unsigned and --trusted-key exclude each other")
    keys = load_trusted_keys(args.trusted_key)
    return Agent(SlotStore(args.slots), public_keys=keys,
                 insecure_unsigned=args.insecure_unsigned,
                 allow_downgrade=args.allow_downgrade)


def run_serial_agent(args: argparse.Namespace) -> int:
    """`serial-agent`: serve the agent on the port; the exit status of the last transfer."""
    from .agent import serve_agent
    from .flash import open_port
    from .serial_protocol import STATUS_OK

    agent = make_agent(args)
    port = open_port(args.port, args.baud)
    try:
        serve_agent(port, agent, once=args.once)
    finally:
        port.close()
    status = agent.last_status
    if status is not None:
        print(_status_line(status))
    return 0 if status is None or status.code == STATUS_OK else 2


def run_ota_agent(args: argparse.Namespace) -> int:
    """`ota-agent`: serve the agent on the site's OTA topics until SIGTERM or SIGINT (or one
    transfer, with --once)."""
    import signal
    import threading

    from edge_slm.daemon.options import link_connection
    from edge_slm.errors import EdgeSlmError
    from edge_slm.protocols.ota import OtaStatus

    from .flash import pump
    from .mqtt_link import device_link
    from .serial_protocol import STATUS_OK, STATUS_TEXT

    conn = link_connection(args)  # a bad URL or TLS option fails before anything starts
    agent = make_agent(args)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: stop.set())
    try:
        link = device_link(conn, args.site_id)
    except OSError as err:  # the broker cannot be reached (the message says which)
        raise EdgeSlmError(str(err)) from err
    topic = OtaStatus.topic(site_id=args.site_id)

    last_report: Optional[float] = None  # when progress was last published
    finished = 0
    try:
        while not stop.is_set():
            pump(link, agent, time.monotonic)
            progress, now = agent.progress, time.monotonic()
            if progress is None:
                last_report = None
            elif last_report is None or now - last_report >= PROGRESS_EVERY_S:
                last_report = now  # at a transfer's start, then every PROGRESS_EVERY_S
                received, total = progress
                link.publish_status(topic, OtaStatus.progress(received, total, at=time.time()))
            status = agent.last_status
            if agent.completed > finished and status is not None:
                finished = agent.completed
                ok = status.code == STATUS_OK
                code = STATUS_TEXT.get(status.code, str(status.code))
                link.publish_status(topic, OtaStatus.result(ok, code, status.detail,
                                                            at=time.time()))
                print(f"{code}: {status.detail}", flush=True)
                if args.once:
                    return 0 if ok else 2
    finally:
        agent.close()
        link.close()
    return 0
