"""`edge-slm ota-agent`: the device side of `firmware-tools ota` (updates over MQTT).

    edge-slm ota-agent --broker mqtt://hub.local --site-id kitchen \\
        --slots /var/lib/edge-slm/slots --trusted-key keys/edge-slm-signing.pub.pem
    edge-slm ota-agent --broker mqtts://kitchen:secret@hub.local --tls-ca ca.pem \\
        --mqtt-version 3.1.1 --site-id kitchen --slots /var/lib/edge-slm/slots

The serial agent's protocol, checks and A/B switch (docs/serial-protocol.md) over the topics
`edge-slm/<site>/ota/in` and `/ota/out`; progress (every second) and the result of each
transfer are published, retained, on `edge-slm/<site>/ota/status`. Serve the active slot with
`edge-slm serve --bundle SLOTS/<active>.slm` and send it SIGHUP after an update.
"""

from __future__ import annotations

import argparse
import time

from ..errors import EdgeSlmError

#: Seconds between two progress reports on the status topic during a transfer.
PROGRESS_EVERY_S = 1.0


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand."""
    from .flags import add_site_id_arg
    from .link_args import add_link_args
    from .serial_agent import add_agent_args

    p = sub.add_parser("ota-agent", help="receive and install bundles over MQTT",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_link_args(p)
    add_site_id_arg(p, help="this device's site id")
    add_agent_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    import signal
    import threading

    from firmware_tools.agent import Agent, serve_agent
    from firmware_tools.mqtt_link import device_link
    from firmware_tools.serial_protocol import STATUS_OK, STATUS_TEXT
    from firmware_tools.signing import load_public
    from firmware_tools.slots import SlotStore

    from ..protocols.ota import OtaStatus
    from .link_args import link_connection

    conn = link_connection(args)  # a bad URL or TLS option fails before anything starts
    keys = [load_public(p) for p in args.trusted_key]
    store = SlotStore(args.slots)
    agent = Agent(store, public_keys=keys)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: stop.set())
    try:
        link = device_link(conn, args.site_id)
    except OSError as err:  # the broker cannot be reached (the message says which)
        raise EdgeSlmError(str(err)) from err
    topic = OtaStatus.topic(site_id=args.site_id)

    def report_progress() -> None:  # every PROGRESS_EVERY_S while a transfer runs
        last = 0.0
        while not stop.wait(PROGRESS_EVERY_S):
            now_progress = agent.progress
            if now_progress is not None and time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                link.publish_status(topic, OtaStatus.progress(*now_progress, at=time.time()))

    threading.Thread(target=report_progress, daemon=True).start()
    try:
        while not stop.is_set():
            done = serve_agent(link, agent, stop=stop, once=True)
            status = agent.last_status
            if done and status is not None:
                ok = status.code == STATUS_OK
                code = STATUS_TEXT.get(status.code, str(status.code))
                link.publish_status(topic, OtaStatus.result(ok, code, status.detail,
                                                            at=time.time()))
                print(f"{code}: {status.detail}", flush=True)
                if args.once:
                    return 0 if ok else 2
            agent = Agent(store, public_keys=keys)  # the next transfer starts afresh
    finally:
        link.close()
    return 0
