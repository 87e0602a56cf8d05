"""`edge-slm demo`: the whole thing on one machine: a broker, the daemon with the shipped
model, a few home commands published over MQTT (native API and Hermes), their intents
printed as they come back."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
from dataclasses import replace
from pathlib import Path

from ..errors import EdgeSlmError

#: Commands the demo sends (the last one is not a home command).
COMMANDS = ("turn off the kitchen lights", "is the garage door open?",
            "set the bedroom to 20 degrees", "could you dim the living room lamp to 50 percent",
            "add oat milk to my shopping list", "set a timer for 10 minutes",
            "what is the capital of france")
#: Longest wait for the daemon to come up, and for each answer.
READY_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 10.0
SITE = "demo"


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand."""
    p = sub.add_parser("demo", help="broker + daemon + a few commands over MQTT, on this machine",
                       description=__doc__)
    p.add_argument("--bundle", type=Path, help="model bundle (default: the shipped int8 one)")
    p.add_argument("text", nargs="*", help="commands to send instead of the built-in ones")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    from ..daemon import DaemonConfig
    from ..daemon.broker import EmbeddedBroker
    from ..daemon.client import connect, make_client
    from ..daemon.handlers import Handler
    from ..daemon.mqtt import MqttDaemon
    from .parse import load_engine

    engine = load_engine(args.bundle)
    broker = EmbeddedBroker(port=0)
    url = broker.start()
    print(f"broker: embedded {broker.backend} at {url}", file=sys.stderr)
    version = "5" if broker.mqtt_version == "5" else "3.1.1"
    config = DaemonConfig(broker=url, mqtt_version=version, client_id="edge-slm-demo")
    daemon = MqttDaemon(Handler(engine, config), config)
    server = threading.Thread(target=daemon.run_forever, daemon=True)
    answers: "queue.Queue[dict]" = queue.Queue()
    user = replace(config.connection(), client_id="edge-slm-demo-user", clean=True,
                   session_expiry_s=None)
    client = make_client(user)
    client.on_message = lambda c, u, m: answers.put({"topic": m.topic,
                                                     **json.loads(m.payload)})
    try:
        server.start()
        if not daemon.ready.wait(READY_TIMEOUT_S):
            raise EdgeSlmError("the daemon did not come up; run `edge-slm serve` to see why")
        connect(client, user)
        client.subscribe([(f"edge-slm/{SITE}/intent", 1), ("hermes/intent/#", 1),
                          ("hermes/nlu/intentNotRecognized", 1)])
        client.loop_start()
        texts = list(args.text) or list(COMMANDS)
        print(f"daemon: {engine.bundle.model_id}, native API on edge-slm/{SITE}/query\n")
        for i, text in enumerate(texts):
            client.publish(f"edge-slm/{SITE}/query", json.dumps({"id": i, "text": text}), qos=1)
            reply = answers.get(timeout=ANSWER_TIMEOUT_S)
            slots = ", ".join(f"{s['name']}={s['value']!r}" for s in reply.get("slots", []))
            intent = reply.get("intent") or "(not a home command)"
            print(f"  {text!r:55} -> {intent} {slots} ({reply.get('latency_ms')} ms)")
        print("\nthe same over Rhasspy's Hermes topics:")
        client.publish("hermes/nlu/query", json.dumps({"input": texts[0], "siteId": SITE}),
                       qos=1)
        reply = answers.get(timeout=ANSWER_TIMEOUT_S)
        shown = {k: reply.get(k) for k in ("input", "intent", "slots")}
        print(f"  {reply['topic']}: " + json.dumps(shown)[:300])
        return 0
    except queue.Empty:
        raise EdgeSlmError("no answer from the daemon within "
                           f"{ANSWER_TIMEOUT_S:g} s") from None
    finally:
        client.loop_stop()
        client.disconnect()
        daemon.stop()
        server.join(timeout=10)
        broker.stop()
