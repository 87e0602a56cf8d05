#!/usr/bin/env python3
"""The daemon acceptance benchmark: `edge-slm serve` on a real mosquitto, beside mosquitto's
bare round trip measured in the same run.

  (a) bare round trip: one paho client publishes a 64-byte message at QoS 1 to a topic another
      paho client subscribes to (p50/p99), and the same messages as fast as possible (msg/s);
  (b) `edge-slm serve` (always-on, pinned to one core with taskset when there is one), native
      API: publish a query, time until its intent reply arrives (p50/p99, sequential);
  (c) throughput: queries published as fast as possible, commands per second until the last
      reply;
  (d) the daemon's RSS (VmHWM, VmRSS from /proc/<pid>/status) after that load;
  (e) idle CPU over --idle seconds, always-on and `--mode adaptive` (utime+stime from
      /proc/<pid>/stat over the window), and adaptive wake-ups per hour from the retained
      telemetry edge-slm/<site>/telemetry.

Prints tables with ratios to the bare round trip. Usage:
    python scripts/bench_daemon.py [--queries 2000] [--burst 5000] [--idle 60] [--bundle PATH]
mosquitto runs with max_queued_messages 0 (no limit), so the burst is not cut at its
default of 1000 queued per client. Needs mosquitto (apt-get install mosquitto) and Linux.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge_slm.daemon.broker import MOSQUITTO, EmbeddedBroker

SITE = "bench"
PAYLOAD = b"x" * 64
"""The bare round trip's message: 64 bytes, about a query's size."""
TEXTS = ("turn off the kitchen lights", "set the bedroom to 20 degrees", "is the garage door open",
         "turn on the lamp", "what time is it", "pause the music in the living room")
"""Queries, taken in turn."""
WARMUP = 100
"""Untimed round trips before each timed series (connections, caches, the interpreter)."""
LOAD_TIMEOUT_S = 120.0
"""Longest wait for `edge-slm serve` to load the model and say online."""
REPLY_TIMEOUT_S = 10.0
"""Longest wait for one reply."""
BURST_GAP_S = 30.0
"""Longest wait for the next reply of the throughput burst (a lost message ends the run)."""
STOP_TIMEOUT_S = 30.0
"""Longest wait for the daemon to exit after SIGTERM."""


class Listener:
    """A paho client (MQTT 5) that timestamps every message it receives on its topics."""

    def __init__(self, port: int, topics: List[str]) -> None:
        from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv5

        self.got: "queue.Queue[Tuple[float, str, bytes]]" = queue.Queue()
        ready = threading.Event()
        self.client = Client(CallbackAPIVersion.VERSION2, protocol=MQTTv5)
        self.client.max_inflight_messages_set(0)  # unlimited: the burst is not throttled here
        self.client.max_queued_messages_set(0)
        if topics:
            self.client.on_connect = lambda c, *a: c.subscribe([(t, 1) for t in topics])
            self.client.on_subscribe = lambda *a: ready.set()
        else:  # a publisher only
            self.client.on_connect = lambda *a: ready.set()
        self.client.on_message = lambda c, u, m: self.got.put(
            (time.perf_counter(), m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not ready.wait(REPLY_TIMEOUT_S):
            raise RuntimeError(f"no CONNACK or SUBACK for {topics}")

    def next(self, timeout: float = REPLY_TIMEOUT_S) -> Tuple[float, str, bytes]:
        """The next message (receive time, topic, payload)."""
        return self.got.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def round_trips(pub: Listener, sub: Listener, topic: str, payloads: List[bytes],
                key=lambda p: p) -> np.ndarray:
    """Milliseconds from publish to arrival, one message at a time (arrival matched by key)."""
    out = []
    for payload in payloads:
        t0 = time.perf_counter()
        pub.client.publish(topic, payload, qos=1)
        while True:
            t1, _, got = sub.next()
            if key(got) == key(payload):
                break
        out.append(t1 - t0)
    return np.asarray(out) * 1000


def burst(pub: Listener, sub: Listener, topic: str, payloads: List[bytes]) -> float:
    """Messages per second: all published at once, until the last has arrived."""
    t0 = time.perf_counter()
    for payload in payloads:
        pub.client.publish(topic, payload, qos=1)
    last = t0
    for count in range(len(payloads)):
        try:
            last, _, _ = sub.next(timeout=BURST_GAP_S)
        except queue.Empty:
            raise RuntimeError(f"burst on {topic}: {count} of {len(payloads)} arrived, then "
                               f"nothing for {BURST_GAP_S:g} s") from None
    return len(payloads) / (last - t0)


def query(i: int) -> bytes:
    return json.dumps({"id": i, "text": TEXTS[i % len(TEXTS)]}).encode()


def reply_id(payload: bytes) -> Any:
    obj = json.loads(payload)
    if "error" in obj:
        raise RuntimeError(f"the daemon answered an error: {obj}")
    return obj.get("id")


def serve(bundle: Path, url: str, log: Path, mode: str) -> subprocess.Popen:
    """`edge-slm serve` in a process, on the first allowed core when taskset exists."""
    cmd = [sys.executable, "-m", "edge_slm", "serve", "--bundle", str(bundle), "--broker", url,
           "--site-id", SITE, "--mode", mode, "--rate-limit", "0"]  # the burst is one site
    cpu = sorted(os.sched_getaffinity(0))[0] if hasattr(os, "sched_getaffinity") else None
    pre = ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []
    with open(log, "ab") as out:
        return subprocess.Popen(pre + cmd, stdout=out, stderr=subprocess.STDOUT)


def wait_online(listener: Listener, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"edge-slm serve exited: {log.read_text()[-2000:]}")
        try:
            _, topic, payload = listener.next(timeout=0.5)
        except queue.Empty:
            continue
        if topic.endswith("/status") and json.loads(payload).get("state") == "online":
            return
    raise RuntimeError("edge-slm serve did not come online: " + log.read_text()[-2000:])


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def memory_mb(pid: int) -> Dict[str, float]:
    """VmHWM and VmRSS of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(line.split()[1]) / 1024
    return out


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14, 15


def idle_cpu(pid: int, window_s: float, listener: Optional[Listener] = None
             ) -> Tuple[float, List[Dict[str, Any]]]:
    """CPU percent of `pid` over the window, and the telemetry received meanwhile."""
    start, c0 = time.monotonic(), cpu_s(pid)
    telemetry = []
    while (left := start + window_s - time.monotonic()) > 0:
        if listener is None:
            time.sleep(left)
            continue
        try:
            _, topic, payload = listener.next(timeout=left)
        except queue.Empty:
            continue
        if topic.endswith("/telemetry"):
            telemetry.append(json.loads(payload))
    return 100.0 * (cpu_s(pid) - c0) / (time.monotonic() - start), telemetry


def wakes_per_hour(telemetry: List[Dict[str, Any]]) -> Tuple[float, float]:
    """(wake-ups per hour between the first and last report, nan with fewer than two;
    3600 / the period of the last report: the rate the daemon has settled on)."""
    measured = float("nan")
    if len(telemetry) >= 2:
        a, b = telemetry[0], telemetry[-1]
        measured = 3600.0 * (b["wakes"] - a["wakes"]) / (b["updated_at"] - a["updated_at"])
    period = telemetry[-1].get("period_s") if telemetry else None
    return measured, (3600.0 / period if period else float("nan"))


def main() -> int:
    from edge_slm.runtime.engine import shipped_bundles

    default = next((b for b in shipped_bundles() if b.name == "en-int8.slm"), None)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000, help="timed round trips")
    parser.add_argument("--burst", type=int, default=5000, help="queries of the throughput run")
    parser.add_argument("--idle", type=float, default=60.0, metavar="S", help="idle window")
    parser.add_argument("--bundle", type=Path, default=default, help="default: en-int8.slm")
    args = parser.parse_args()
    if args.bundle is None or not Path("/proc/self/stat").exists():
        print("needs a bundle (--bundle) and Linux /proc", file=sys.stderr)
        return 2
    workdir = Path(os.environ.get("TMPDIR", "/tmp"))
    log = workdir / f"bench_daemon_{os.getpid()}.log"
    # no queue limit: the burst must not be cut by mosquitto's 1000 queued per client
    with EmbeddedBroker(backends=(MOSQUITTO,), max_queued_messages=0) as broker:
        port = broker.port
        print(f"bench_daemon: mosquitto on {broker.url}, {args.bundle.name}, load average "
              f"{os.getloadavg()[0]:.2f} at the start", file=sys.stderr, flush=True)
        # (a) bare mosquitto
        pub, sub = Listener(port, []), Listener(port, ["bench/bare"])
        payloads = [str(i).encode().ljust(64, b"x") for i in range(WARMUP + args.queries)]
        round_trips(pub, sub, "bench/bare", payloads[:WARMUP])
        bare = round_trips(pub, sub, "bench/bare", payloads[WARMUP:])
        bare_rate = burst(pub, sub, "bench/bare", [PAYLOAD] * args.burst)
        sub.close()
        # (b)-(e) always-on
        replies = Listener(port, [f"edge-slm/{SITE}/intent", f"edge-slm/{SITE}/status"])
        proc = serve(args.bundle, broker.url, log, "always-on")
        try:
            wait_online(replies, proc, log)
            topic = f"edge-slm/{SITE}/query"
            qs = [query(i) for i in range(WARMUP + args.queries + args.burst)]
            round_trips(pub, replies, topic, qs[:WARMUP], key=lambda p: reply_id(p))
            daemon = round_trips(pub, replies, topic, qs[WARMUP:WARMUP + args.queries],
                                 key=lambda p: reply_id(p))
            rate = burst(pub, replies, topic, qs[WARMUP + args.queries:])
            mem = memory_mb(proc.pid)
            idle_on, _ = idle_cpu(proc.pid, args.idle)
        finally:
            stop(proc)
        replies.close()
        # (e) adaptive
        tele = Listener(port, [f"edge-slm/{SITE}/status", f"edge-slm/{SITE}/telemetry"])
        proc = serve(args.bundle, broker.url, log, "adaptive")
        try:
            wait_online(tele, proc, log)
            first: Dict[str, Any] = {}
            while first.get("mode") != "adaptive":  # the report after the first wake
                first = json.loads(tele.next(timeout=LOAD_TIMEOUT_S)[2])
            idle_ad, telemetry = idle_cpu(proc.pid, args.idle, tele)
            wph = wakes_per_hour([first] + telemetry)
        finally:
            stop(proc)
        tele.close()
        pub.close()
    report(args, bare, bare_rate, daemon, rate, mem, (idle_on, idle_ad), wph)
    return 0


def report(args: Any, bare: np.ndarray, bare_rate: float, daemon: np.ndarray, rate: float,
           mem: Dict[str, float], idle: Tuple[float, float], wph: Tuple[float, float]) -> None:
    """Print the tables."""
    b50, b99 = float(np.percentile(bare, 50)), float(np.percentile(bare, 99))
    tick = 100.0 / os.sysconf("SC_CLK_TCK") / args.idle
    print(f"daemon benchmark: {args.queries} sequential round trips, a burst of {args.burst}, "
          f"idle window {args.idle:g} s, bundle {args.bundle.name}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at the end\n")
    print(f"| {'what':<46} | {'p50 ms':>7} | {'p99 ms':>7} | {'x bare p50':>10} | "
          f"{'x bare p99':>10} |")
    print(f"|{'-' * 48}|{'-' * 9}|{'-' * 9}|{'-' * 12}|{'-' * 12}|")
    for what, lat in (("(a) mosquitto bare round trip, QoS 1, 64 B", bare),
                      ("(b) edge-slm serve: query -> intent reply", daemon)):
        p50, p99 = float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
        print(f"| {what:<46} | {p50:>7.3f} | {p99:>7.3f} | {p50 / b50:>9.1f}x | "
              f"{p99 / b99:>9.1f}x |")
    print(f"\n| {'throughput':<46} | {'per s':>9} | {'x bare':>8} |")
    print(f"|{'-' * 48}|{'-' * 11}|{'-' * 10}|")
    print(f"| {'(a) mosquitto bare, messages':<46} | {bare_rate:>9.0f} | {1.0:>7.2f}x |")
    print(f"| {'(c) edge-slm serve, commands':<46} | {rate:>9.0f} | {rate / bare_rate:>7.3f}x |")
    print(f"\n| {'daemon resources':<46} | {'value':>12} |")
    print(f"|{'-' * 48}|{'-' * 14}|")
    rows = [("(d) VmHWM after the load (MB)", f"{mem.get('VmHWM', float('nan')):.1f}"),
            ("(d) VmRSS after the load (MB)", f"{mem.get('VmRSS', float('nan')):.1f}"),
            (f"(e) idle CPU, always-on, {args.idle:g} s (%)", f"{idle[0]:.3f}"),
            (f"(e) idle CPU, adaptive, {args.idle:g} s (%)", f"{idle[1]:.3f}"),
            ("(e) adaptive wake-ups/h over the window", f"{wph[0]:.0f}"),
            ("(e) adaptive wake-ups/h at its last period", f"{wph[1]:.0f}")]
    for what, value in rows:
        print(f"| {what:<46} | {value:>12} |")
    print(f"\nCPU time is counted in clock ticks: idle CPU resolution {tick:.3f} %. Wake-ups "
          "come from the retained telemetry (wakes, updated_at, period_s); the adaptive period "
          "doubles while idle, so a short window reads more wake-ups than the settled rate.")


if __name__ == "__main__":
    sys.exit(main())
