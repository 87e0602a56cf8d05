#!/usr/bin/env python3
"""Load: N queries at R per second through `edge-slm serve` on a real mosquitto, every one
answered once.

    python scripts/load.py --count 5000 --rate 500 --json out.json
    python scripts/load.py --count 100000 --rate 500 --api hermes --json out.json
    python scripts/load.py --broker mqtt://hub:1883 --site kitchen --pid 1234 ...

Without --broker it starts mosquitto (`edge_slm.daemon.mosquitto.MosquittoProcess`, no limit
on queued messages) and `edge-slm serve` as a subprocess (--bundle, default the shipped int8
one); with --broker it loads a daemon that already serves --site there (--pid names it for
the memory figures). Either way the daemon's retained `online` status is awaited first (on
`edge-slm/<site>/status`, or --status-site's). One paho client publishes the queries at QoS
1, paced to --rate, each with an id of its own; another subscribes (QoS 1) to the answers: native
`edge-slm/<site>/intent`, or Hermes `hermes/nlu/intentParsed`, `intentNotRecognized` and
`hermes/error/nlu` (its `sessionId` carries the id, as an error has no `id`).

--warmup queries go first and are not counted; the daemon's VmRSS (/proc/<pid>/status) is
read after them and again after the run. The run waits until every query is answered, or
until no answer came for --gap seconds, then --settle seconds more for duplicates. Writes
{"sent", "answered", "lost", "duplicated", "p50_ms", "p99_ms", "rss_growth_mb", ...} to
--json, prints a table, and exits 1 when anything was lost or answered twice. Progress goes
to stderr. Latency is from just before the publish to the answer's arrival.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

TEXTS = ("turn off the kitchen lights", "set the bedroom to 20 degrees",
         "is the garage door open", "turn on the lamp", "what time is it",
         "pause the music in the living room", "lock the front door", "how are you today")
"""The queries, taken in turn."""
LOAD_TIMEOUT_S = 120.0
"""Longest wait for the daemon to come online and answer the warm-up."""
STOP_TIMEOUT_S = 30.0
"""Longest wait for the daemon to exit after SIGTERM."""
HERMES_ANSWERS = ("hermes/nlu/intentParsed", "hermes/nlu/intentNotRecognized",
                  "hermes/error/nlu")
"""The Hermes topics on which a query gets its one answer."""


def _client(port: int, host: str, client_id: str = "") -> Any:
    from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv5

    client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTv5)
    client.max_queued_messages_set(0)
    return client


class Answers:
    """A paho client counting the answers by id, with their arrival times."""

    def __init__(self, host: str, port: int, topics: List[str], status: str) -> None:
        self.counts: Counter = Counter()
        """Answers per id (ids of this run only)."""
        self.arrived: Dict[str, float] = {}
        """perf_counter() of each id's first answer."""
        self.errors = 0
        """Answers that were errors."""
        self.online = threading.Event()
        """Set when the status topic says online."""
        self.lock = threading.Lock()
        """Held while the counts change (the network thread) or are copied."""
        self.prefix = ""
        """Only ids starting with this count (other runs' answers are ignored)."""
        self.status = status
        """The daemon's status topic."""
        self._ready = threading.Event()
        self.client = _client(port, host)
        self.client.on_connect = lambda c, *a: c.subscribe(
            [(t, 1) for t in topics + [status]])
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError(f"no SUBACK from {host}:{port}")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        now = time.perf_counter()
        try:
            obj = json.loads(msg.payload)
        except ValueError:
            return
        if not isinstance(obj, dict):
            return
        if msg.topic == self.status:
            if obj.get("state") == "online":
                self.online.set()
            return
        key = obj.get("id") if msg.topic != "hermes/error/nlu" else obj.get("sessionId")
        if not isinstance(key, str) or not key.startswith(self.prefix):
            return
        with self.lock:
            self.errors += "error" in obj
            self.counts[key] += 1
            self.arrived.setdefault(key, now)

    def snapshot(self) -> Tuple[Counter, Dict[str, float], int]:
        """(counts, arrival times, errors), copied."""
        with self.lock:
            return Counter(self.counts), dict(self.arrived), self.errors

    def reset(self, prefix: str) -> None:
        """Count the ids starting with `prefix` from now on, from zero."""
        with self.lock:
            self.prefix = prefix
            self.counts.clear()
            self.arrived.clear()
            self.errors = 0

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def query(api: str, site: str, key: str, i: int) -> bytes:
    """The payload of query number i with id `key`."""
    text = TEXTS[i % len(TEXTS)]
    if api == "hermes":
        return json.dumps({"input": text, "siteId": site, "id": key, "sessionId": key}).encode()
    return json.dumps({"id": key, "text": text}).encode()


def rss_mb(pid: Optional[int]) -> Optional[float]:
    """VmRSS of a process in MB (None without one)."""
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def percentile(values: List[float], q: float) -> Optional[float]:
    """The q-th percentile (nearest rank) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered))) - 1))]


class Run:
    """One load run against a serving daemon."""

    def __init__(self, args: argparse.Namespace, host: str, port: int) -> None:
        self.args = args
        topics = (list(HERMES_ANSWERS) if args.api == "hermes"
                  else [f"edge-slm/{args.site}/intent"])
        self.topic = ("hermes/nlu/query" if args.api == "hermes"
                      else f"edge-slm/{args.site}/query")
        status = f"edge-slm/{args.status_site or args.site}/status"
        self.answers = Answers(host, port, topics, status)
        self.sender = _client(port, host)
        self.sender.connect(host, port)
        self.sender.loop_start()
        self.run_id = f"{os.getpid()}-{int(time.time())}"
        self.sent_at: Dict[str, float] = {}

    def send(self, prefix: str, count: int, rate: float, bar: Any = None) -> float:
        """Publish `count` queries paced to `rate` per second; the seconds it took."""
        start = time.perf_counter()
        for i in range(count):
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            key = f"{prefix}{i}"
            self.sent_at[key] = time.perf_counter()
            self.sender.publish(self.topic, query(self.args.api, self.args.site, key, i), qos=1)
            if bar is not None and i % 100 == 99:
                bar.n = len(self.answers.counts)
                bar.set_postfix(sent=i + 1, refresh=False)
                bar.refresh()
        return time.perf_counter() - start

    def wait(self, count: int, gap: float, bar: Any = None) -> None:
        """Until `count` ids are answered, or none came for `gap` seconds."""
        last, seen = time.monotonic(), -1
        while len(self.answers.counts) < count and time.monotonic() - last < gap:
            now = len(self.answers.counts)
            if now != seen:
                last, seen = time.monotonic(), now
            if bar is not None:
                bar.n = now
                bar.refresh()
            time.sleep(0.05)

    def close(self) -> None:
        self.sender.disconnect()
        self.sender.loop_stop()
        self.answers.close()


def serve(args: argparse.Namespace, url: str, log: Path) -> subprocess.Popen:
    """`edge-slm serve` for the load's site, logging to `log`."""
    cmd = [sys.executable, "-m", "edge_slm", "serve", "--broker", url, "--site-id", args.site,
           "--client-id", f"edge-slm-load-{args.site}",
           "--rate-limit", "0"]  # one site sends the whole load: no per-site limit
    if args.bundle is not None:
        cmd += ["--bundle", str(args.bundle)]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


def measure(args: argparse.Namespace, host: str, port: int, pid: Optional[int],
            proc: Optional[subprocess.Popen], log: Optional[Path]) -> Dict[str, Any]:
    """Warm up, read the RSS, send the load, wait, read the RSS again: the figures."""
    from tqdm import tqdm

    run = Run(args, host, port)
    try:
        if not run.answers.online.wait(LOAD_TIMEOUT_S):  # retained: at once when it is up
            raise RuntimeError(f"no online status on {run.answers.status} in "
                               f"{LOAD_TIMEOUT_S:g} s" + (": " + log.read_text()[-2000:]
                                                          if log else ""))
        warm = f"warm-{run.run_id}-"
        run.answers.reset(warm)
        run.send(warm, args.warmup, args.rate)
        run.wait(args.warmup, LOAD_TIMEOUT_S)
        if len(run.answers.counts) < args.warmup:
            raise RuntimeError(f"warm-up: {len(run.answers.counts)} of {args.warmup} answered")
        before = rss_mb(pid)
        prefix = f"q-{run.run_id}-"
        run.answers.reset(prefix)
        with tqdm(total=args.count, file=sys.stderr, unit="q", desc="answered",
                  disable=args.quiet) as bar:
            took = run.send(prefix, args.count, args.rate, bar)
            run.wait(args.count, args.gap, bar)
            bar.n = len(run.answers.counts)
            bar.refresh()
        time.sleep(args.settle)  # a duplicate comes now or not at all
        after = rss_mb(pid)
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"edge-slm serve died: {log.read_text()[-2000:] if log else ''}")
        counts, arrived, errors = run.answers.snapshot()
        latencies = [(arrived[k] - run.sent_at[k]) * 1000 for k in counts]
    finally:
        run.close()
    answered = len(counts)
    return {
        "sent": args.count, "answered": answered, "lost": args.count - answered,
        "duplicated": sum(n - 1 for n in counts.values()),
        "errors": errors,
        "p50_ms": _round(percentile(latencies, 50)), "p99_ms": _round(percentile(latencies, 99)),
        "max_ms": _round(max(latencies) if latencies else None),
        "rss_before_mb": _round(before), "rss_after_mb": _round(after),
        "rss_growth_mb": _round(after - before if before is not None and after is not None
                                else None),
        "rate": args.rate, "rate_sent": round(args.count / took, 1) if took > 0 else None,
        "api": args.api, "warmup": args.warmup,
    }


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 3)


def table(result: Dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    rows = [("queries sent", result["sent"]), ("answered", result["answered"]),
            ("lost", result["lost"]), ("answered twice or more", result["duplicated"]),
            ("answers that were errors", result["errors"]),
            ("rate asked / sent (per s)", f"{result['rate']:g} / {result['rate_sent']}"),
            ("latency p50 (ms)", result["p50_ms"]), ("latency p99 (ms)", result["p99_ms"]),
            ("latency max (ms)", result["max_ms"]),
            ("daemon VmRSS after warm-up (MB)", result["rss_before_mb"]),
            ("daemon VmRSS after the run (MB)", result["rss_after_mb"]),
            ("RSS growth (MB)", result["rss_growth_mb"])]
    lines = [f"| {'load (' + result['api'] + ')':<34} | {'value':>15} |",
             f"|{'-' * 36}|{'-' * 17}|"]
    lines += [f"| {what:<34} | {str(value):>15} |" for what, value in rows]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="queries (default 5000)")
    parser.add_argument("--rate", type=float, default=500.0, help="queries per second")
    parser.add_argument("--api", choices=("native", "hermes"), default="native")
    parser.add_argument("--broker", help="a broker where a daemon already serves --site "
                        "(default: start mosquitto and edge-slm serve)")
    parser.add_argument("--site", default="load", help="the site queried (default load)")
    parser.add_argument("--status-site", help="with --broker: the daemon's status site, whose "
                        "online status is awaited (default: --site)")
    parser.add_argument("--pid", type=int, help="with --broker: the daemon's pid (memory)")
    parser.add_argument("--bundle", type=Path, help="the daemon's bundle (default: shipped)")
    parser.add_argument("--warmup", type=int, default=200, help="uncounted queries first")
    parser.add_argument("--gap", type=float, default=30.0, metavar="S",
                        help="give up after this long without an answer")
    parser.add_argument("--settle", type=float, default=2.0, metavar="S",
                        help="wait this long after the last answer for duplicates")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.count <= 0 or args.rate <= 0 or args.warmup < 1:
        parser.error("--count and --rate must be above zero, --warmup at least 1")
    if args.broker is not None:
        from edge_slm.daemon import parse_broker_url

        address = parse_broker_url(args.broker)
        result = measure(args, address.host, address.port, args.pid, None, None)
    else:
        result = _local(args)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


def _local(args: argparse.Namespace) -> Dict[str, Any]:
    """mosquitto and `edge-slm serve` of our own, for one run."""
    from edge_slm.daemon.mosquitto import MosquittoProcess

    with tempfile.TemporaryDirectory(prefix="edge-slm-load-") as tmp:
        folder = Path(tmp)
        broker = MosquittoProcess(folder, max_queued_messages=0, die_with_parent=True).start()
        log = folder / "serve.log"
        proc = None
        try:
            proc = serve(args, broker.url, log)
            return measure(args, broker.host, broker.port, proc.pid, proc, log)
        finally:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            broker.stop()


if __name__ == "__main__":
    sys.exit(main())
