#!/usr/bin/env python3
"""pi-check: the runtime proven on a Raspberry Pi's architecture (64-bit ARM), emulated.

Builds (once, cached under ~/.cache/edge-slm/pi-check/) an arm64 Debian 12 root (= Raspberry
Pi OS Bookworm 64-bit) with debootstrap and qemu-user, installs the runtime there FROM THIS
CHECKOUT (a wheel built from the working tree, its dependencies from aarch64 wheels at the
versions this host runs), and runs, under QEMU_CPU=cortex-a72 (a Pi 4's core; --board pi-5:
cortex-a76):

  1. every shipped bundle loaded with its golden self-test;
  2. `edge-slm parse --jsonl` over tests/data/pi_check_sentences.txt with every bundle,
     compared with the x86 answers computed on this host in the same run: intents and slot
     values identical, confidences within --conf-tol;
  3. `edge-slm demo` with the root's own arm64 mosquitto, its answers equal to x86's;
  4. once more under qemu's default CPU model (`max`: it advertises SME, and LiteRT's
     XNNPACK then computes wrong results): the golden self-test must refuse every bundle
     (a runtime that silently miscomputes is refused at load); a few sentences are parsed
     without the self-test to show how far off it is.

Exit status 0 when every check passes, 1 when one fails, 2 when pi-check cannot run.
Needs root, qemu-user-static, binfmt-support and debootstrap (apt-get install), Debian's
mirror and the Python package index (the first run: about 8 minutes; cached: 1 to 4).

What emulation cannot tell: timing (qemu translates every instruction: emulated latency says
nothing of a Pi's), thermal throttling, real memory bandwidth and caches, power. It proves
that the arm64 wheels install and that the model computes the same numbers there.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from pi_check_root import (EmulatedRoot, PiCheckError, build_wheel, ensure_binfmt,
                           host_pins, need_tools, pip_env)

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
MODELS = REPO / "edge_slm" / "data" / "models"
"""The shipped bundles of the checkout (the wheel must ship the same)."""
BOARDS = {"pi-4": ("cortex-a72", "pi4-cpuinfo.txt"), "pi-5": ("cortex-a76", "pi5-cpuinfo.txt")}
"""Board -> (qemu CPU model, the board's /proc/cpuinfo, bound over the root's)."""
CONF_TOL = 0.02
"""Largest confidence difference (intent and slots) allowed between arm64 and x86."""
DIAGNOSTIC_SENTENCES = 60
"""Sentences parsed without the self-test under the default CPU (how far off it is)."""
VENV = "/opt/edge-slm/.venv"
"""The root's virtual environment: where docs/raspberry-pi.md installs it on a Pi."""
WORK = "/tmp/pi-check"
"""Folder inside the root for this run's wheel, pins and probe."""
DEPS_MARK = "/opt/edge-slm/.pi-check-deps"
"""The pins the root's venv was installed with (reinstalled when they change)."""
PIP_TIMEOUT_S = 1800
PARSE_TIMEOUT_S = 900
_T0 = time.monotonic()


def log(msg: str) -> None:
    t = int(time.monotonic() - _T0)
    print(f"[pi-check {t // 60:02d}:{t % 60:02d}] {msg}", file=sys.stderr, flush=True)


class Check:
    """The run's figures, and the checks that failed."""

    def __init__(self) -> None:
        self.out: Dict[str, Any] = {"bundles": {}, "timings_s": {}}
        self.failures: List[str] = []

    def fail(self, msg: str) -> None:
        self.failures.append(msg)
        log("FAIL: " + msg)

    def timed(self, name: str, t0: float) -> None:
        self.out["timings_s"][name] = round(time.monotonic() - t0, 1)


def sentences(path: Path) -> bytes:
    """The sentence file as `parse --jsonl` input."""
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return "".join(json.dumps({"text": ln}, ensure_ascii=False) + "\n"
                   for ln in lines if ln and not ln.startswith("#")).encode("utf-8")


def commands(answer: Dict[str, Any]) -> List[Tuple[Optional[str], float, list]]:
    """(intent, confidence, [(slot, value, confidence)]) per command of a `parse` answer: its
    `commands` where the engine gives them, else the one top-level command (none when nothing
    is recognized)."""
    cmds = answer.get("commands")
    if cmds is None:
        cmds = [answer] if answer.get("intent") is not None else []
    return [(c.get("intent"), float(c.get("confidence", 0.0)),
             [(s["name"], json.dumps(s["value"]), float(s.get("confidence", 0.0)))
              for s in c.get("slots", [])]) for c in cmds]


def compare(x86: List[Dict[str, Any]], arm: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Agreement of two runs' answers: same intents and slot values (in order), and the
    largest confidence difference (top-level, commands' and slots')."""
    if len(x86) != len(arm):
        return {"sentences": len(x86), "agreement": 0.0, "error":
                f"{len(arm)} answers for {len(x86)} sentences"}
    same, worst, differ = 0, 0.0, []
    for a, b in zip(x86, arm):
        ca, cb = commands(a), commands(b)
        keys_a = [(i, [s[:2] for s in sl]) for i, _, sl in ca]
        keys_b = [(i, [s[:2] for s in sl]) for i, _, sl in cb]
        worst = max(worst, abs(float(a.get("confidence", 0)) - float(b.get("confidence", 0))))
        if keys_a == keys_b and ("error" in a) == ("error" in b):
            same += 1
            for (_, pa, sa), (_, pb, sb) in zip(ca, cb):
                worst = max([worst, abs(pa - pb)] + [abs(x[2] - y[2]) for x, y in zip(sa, sb)])
        else:
            differ.append({"text": a.get("text"), "x86": keys_a, "arm64": keys_b})
    return {"sentences": len(x86), "agreement": round(same / max(1, len(x86)), 4),
            "max_conf_diff": round(worst, 4), "differences": differ[:10]}


def jsonl(data: bytes) -> List[Dict[str, Any]]:
    return [json.loads(ln) for ln in data.decode("utf-8").splitlines() if ln.strip()]


def host(cmd: List[str], stdin: Optional[bytes] = None) -> subprocess.CompletedProcess:
    """`python -m edge_slm ...` of this checkout on this host (x86)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO),
           "LANG": "C.UTF-8", "HOME": str(Path.home())}
    return subprocess.run([sys.executable, "-m", "edge_slm", *cmd], input=stdin,
                          capture_output=True, env=env, timeout=PARSE_TIMEOUT_S, cwd=REPO)


class Pi:
    """The root, the board, and the commands run in it."""

    def __init__(self, root: EmulatedRoot, board: str, cache: Path) -> None:
        self.root = root
        self.cpu, name = BOARDS[board]
        self.cpuinfo = cache / name
        shutil.copyfile(DATA / name, self.cpuinfo)  # a copy: the root cannot write the repo's

    def run(self, cmd: List[str], default_cpu: bool = False, stdin: Optional[bytes] = None,
            env: Optional[Dict[str, str]] = None, timeout: float = PARSE_TIMEOUT_S
            ) -> subprocess.CompletedProcess:
        return self.root.run(cmd, self.cpuinfo, None if default_cpu else self.cpu, env=env,
                             stdin=stdin, timeout=timeout)

    def must(self, cmd: List[str], what: str, **kw: Any) -> str:
        done = self.run(cmd, **kw)
        if done.returncode != 0:
            raise PiCheckError(f"{what} failed ({done.returncode}): "
                               f"{done.stderr.decode(errors='replace')[-3000:]}")
        return done.stdout.decode("utf-8")

    def probe(self, *args: str, default_cpu: bool = False) -> Any:
        return json.loads(self.must([f"{VENV}/bin/python", f"{WORK}/probe.py", *args],
                                    f"probe {' '.join(args)}", default_cpu=default_cpu))


def install(pi: Pi, wheel: Path, check: Check) -> None:
    """The root's venv: dependencies at the host's pins (once per set of pins), then this
    checkout's wheel."""
    work = pi.root.path / WORK.lstrip("/")
    shutil.rmtree(work, ignore_errors=True)
    inside = pi.root.put(wheel, f"{WORK}/{wheel.name}")
    pi.root.put(Path(__file__).resolve().parent / "pi_check_probe.py", f"{WORK}/probe.py")
    pins = "\n".join(host_pins(wheel)) + "\n"
    (work / "constraints.txt").write_text(pins)
    env = pip_env(pi.root)
    mark = pi.root.path / DEPS_MARK.lstrip("/")
    pip = [f"{VENV}/bin/python", "-m", "pip", "install", "-q", "--only-binary=:all:"]
    t0 = time.monotonic()
    if not mark.exists() or mark.read_text() != pins:
        log(f"venv: {VENV} with the runtime's dependencies at this host's versions ("
            + ", ".join(p for p in pins.split() if p.split("==")[0] in
                        ("numpy", "ai-edge-litert")) + f"), index {env['PIP_INDEX_URL']}")
        shutil.rmtree(pi.root.path / VENV.lstrip("/"), ignore_errors=True)
        mark.unlink(missing_ok=True)
        pi.must(["/usr/bin/python3", "-m", "venv", VENV], "python3 -m venv", env=env)
        pi.must(pip + ["-c", f"{WORK}/constraints.txt", inside], "pip install (dependencies)",
                env=env, timeout=PIP_TIMEOUT_S)
        mark.write_text(pins)
        check.timed("venv_and_dependencies", t0)
        t0 = time.monotonic()
    log("venv: installing the checkout's wheel")
    pi.must(pip + ["--no-deps", "--force-reinstall", inside], "pip install (the wheel)",
            env=env, timeout=PIP_TIMEOUT_S)
    check.timed("install_wheel", t0)


def check_bundles(pi: Pi, queries: bytes, check: Check, tol: float) -> None:
    """Golden self-test and answers of every shipped bundle, arm64 against x86."""
    inside = {Path(p).stem: p for p in pi.probe("bundles")}
    here = {p.stem: p for p in sorted(MODELS.glob("*.slm"))}
    if set(inside) != set(here) or not here:
        check.fail(f"the wheel ships {sorted(inside)}, the checkout {sorted(here)}")
    for name in sorted(set(inside) & set(here)):
        t0 = time.monotonic()
        x86 = host(["parse", "--jsonl", "--bundle", str(here[name])], queries)
        if x86.returncode != 0:
            raise PiCheckError(f"x86 parse with {name} failed: {x86.stderr.decode()[-2000:]}")
        x86_s = time.monotonic() - t0
        res: Dict[str, Any] = pi.probe("golden", inside[name])
        log(f"{name}: golden self-test on arm64 ({pi.cpu}): "
            + ("ok, worst diff " + str(res["golden_max_diff"]) if res["golden_ok"]
               else "REFUSED: " + res["error"][:200]))
        t0 = time.monotonic()
        if res["golden_ok"]:
            arm = pi.run([f"{VENV}/bin/edge-slm", "parse", "--jsonl", "--bundle", inside[name]],
                         stdin=queries)
        else:  # how far off, for the report
            arm = pi.run([f"{VENV}/bin/python", f"{WORK}/probe.py", "parse", inside[name]],
                         stdin=queries)
        if arm.returncode != 0:
            check.fail(f"{name}: arm64 parse failed ({arm.returncode}): "
                       f"{arm.stderr.decode(errors='replace')[-1000:]}")
            res.update(agreement=0.0)
        else:
            res.update(compare(jsonl(x86.stdout), jsonl(arm.stdout)))
        res.update(arm64_parse_s=round(time.monotonic() - t0, 1), x86_parse_s=round(x86_s, 1))
        check.out["bundles"][name] = res
        log(f"{name}: {res['sentences']} sentences, agreement with x86 {res['agreement']:.2%}, "
            f"max confidence difference {res.get('max_conf_diff')} ({res['arm64_parse_s']} s "
            "emulated)")
        if not res["golden_ok"]:
            check.fail(f"{name}: refused on arm64 by its golden self-test")
        elif res["agreement"] < 1.0 or res.get("max_conf_diff", 1.0) > tol:
            check.fail(f"{name}: arm64 answers differ from x86 ({res['agreement']:.2%} agree, "
                       f"confidences up to {res.get('max_conf_diff')} apart, tolerance {tol}): "
                       f"{res.get('differences', [])[:3]}")


def _demo_lines(text: str) -> List[str]:
    """The demo's answers without their latencies."""
    return [re.sub(r"\s*\([0-9.]+ ms\)\s*$", "", ln).rstrip() for ln in text.splitlines()
            if "->" in ln or ln.startswith("  hermes/")]


def check_demo(pi: Pi, check: Check) -> None:
    t0 = time.monotonic()
    arm = pi.run([f"{VENV}/bin/edge-slm", "demo"], timeout=300)
    x86 = host(["demo"])
    arm_lines, x86_lines = _demo_lines(arm.stdout.decode()), _demo_lines(x86.stdout.decode())
    broker = re.search(r"broker: embedded (\S+)", arm.stderr.decode())
    demo = {"returncode": arm.returncode, "broker": broker.group(1) if broker else None,
            "answers": len(arm_lines), "same_as_x86": arm_lines == x86_lines,
            "seconds": round(time.monotonic() - t0, 1)}
    check.out["demo"] = demo
    check.out["demo_ok"] = ok = (arm.returncode == 0 and demo["broker"] == "mosquitto"
                                 and bool(arm_lines) and arm_lines == x86_lines)
    log(f"demo on arm64: exit {arm.returncode}, broker {demo['broker']}, {len(arm_lines)} "
        f"answers, same as x86: {demo['same_as_x86']}")
    if not ok:
        check.fail("edge-slm demo on arm64: " + json.dumps(demo) + "\n"
                   + arm.stderr.decode(errors="replace")[-1500:]
                   + ("" if x86.returncode == 0 else "\nx86 demo: " + x86.stderr.decode()[-500:]))


def check_default_cpu(pi: Pi, queries: bytes, check: Check, tol: float) -> None:
    """qemu's default CPU model: every bundle must be refused by its golden self-test."""
    system = pi.probe("system", default_cpu=True)
    out: Dict[str, Any] = {"hwcap": system.get("hwcap"), "hwcap2": system.get("hwcap2"),
                           "bundles": {}}
    refused_all = True
    n = DIAGNOSTIC_SENTENCES
    head = b"".join(queries.splitlines(keepends=True)[:n])
    for name, path in sorted((Path(p).stem, p) for p in pi.probe("bundles")):
        res = pi.probe("golden", path, default_cpu=True)
        arm = pi.run([f"{VENV}/bin/python", f"{WORK}/probe.py", "parse", path], stdin=head,
                     default_cpu=True)
        x86 = host(["parse", "--jsonl", "--bundle", str(MODELS / Path(path).name)], head)
        if arm.returncode == 0 and x86.returncode == 0:
            cmp = compare(jsonl(x86.stdout), jsonl(arm.stdout))
            res["diagnostic"] = {k: cmp.get(k)
                                 for k in ("sentences", "agreement", "max_conf_diff")}
            res["miscomputes"] = cmp["agreement"] < 1.0 or cmp["max_conf_diff"] > tol
        out["bundles"][name] = res
        refused_all &= not res["golden_ok"]
        log(f"{name} under the default CPU: " + ("REFUSED (right)" if not res["golden_ok"]
                                                 else "LOADED") + f"; without the self-test "
            f"{res.get('diagnostic')}")
        if res["golden_ok"]:
            check.fail(f"{name}: the golden self-test accepted qemu's default CPU model, which "
                       + ("computes it wrongly " + str(res.get("diagnostic"))
                          if res.get("miscomputes") else "computed it right this time"))
    check.out["default_cpu"] = out
    check.out["miscompute_refused"] = refused_all


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/pi-check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results here")
    p.add_argument("--board", choices=sorted(BOARDS), default="pi-4",
                   help="the Pi whose core and /proc/cpuinfo are emulated (default pi-4)")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edge-slm"
                   / "pi-check", help="where the root is kept between runs")
    p.add_argument("--rebuild", action="store_true", help="build the root afresh")
    p.add_argument("--sentences", type=Path,
                   default=REPO / "tests" / "data" / "pi_check_sentences.txt")
    p.add_argument("--conf-tol", type=float, default=CONF_TOL,
                   help=f"largest confidence difference arm64 vs x86 (default {CONF_TOL})")
    args = p.parse_args()
    check = Check()
    check.out.update(board=args.board, qemu_cpu=BOARDS[args.board][0],
                     conf_tolerance=args.conf_tol)
    try:
        need_tools()
        ensure_binfmt(log)
        t0 = time.monotonic()
        root = EmulatedRoot.ensure(args.cache, log, rebuild=args.rebuild)
        check.timed("root", t0)
        pi = Pi(root, args.board, args.cache)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="pi-check-wheel-") as tmp:
            wheel = build_wheel(REPO, Path(tmp), log)
            check.timed("wheel", t0)
            install(pi, wheel, check)
        system = pi.probe("system")
        check.out.update(arch=system["machine"], system=system)
        log(f"arm64 root: {system['machine']}, Python {system['python']}, {system['libc']}, "
            f"{system['packages']}")
        if system["machine"] != "aarch64":
            check.fail(f"the root runs {system['machine']}, not aarch64")
        queries = sentences(args.sentences)
        t0 = time.monotonic()
        check_bundles(pi, queries, check, args.conf_tol)
        check.timed("bundles", t0)
        t0 = time.monotonic()
        check_demo(pi, check)
        check.timed("demo", t0)
        t0 = time.monotonic()
        check_default_cpu(pi, queries, check, args.conf_tol)
        check.timed("default_cpu", t0)
    except (PiCheckError, subprocess.TimeoutExpired, OSError) as err:
        check.fail(f"cannot run: {err}")
        status = 2
    else:
        status = 1 if check.failures else 0
    check.out["timings_s"]["total"] = round(time.monotonic() - _T0, 1)
    check.out.update(failures=check.failures, ok=status == 0)
    if args.json:
        args.json.write_text(json.dumps(check.out, indent=1) + "\n")
    summary = {k: check.out.get(k) for k in ("arch", "demo_ok", "miscompute_refused")}
    summary["bundles"] = {k: {"golden_ok": v.get("golden_ok"), "agreement": v.get("agreement")}
                          for k, v in check.out["bundles"].items()}
    log(("PASS" if status == 0 else "FAILED") + f" in {check.out['timings_s']['total']:.0f} s: "
        + json.dumps(summary))
    return status


if __name__ == "__main__":
    sys.exit(main())
