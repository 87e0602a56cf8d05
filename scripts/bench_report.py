"""The tables, plots and README section of `scripts/bench.py`, from its result object (what
`--json` writes), so that they can be made again without measuring (`--from-json`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

BEGIN = "<!-- bench:begin (python scripts/bench.py --run DIR --write-readme) -->"
END = "<!-- bench:end -->"
IMG = Path("docs") / "img"
BOARDS = ("pi-zero-2w", "pi-3b+", "pi-4", "pi-5")


def _pct(v: Optional[float]) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _get(d: Dict[str, Any], *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _table(head: Sequence[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def accuracy_table(systems: Dict[str, Dict[str, Any]]) -> str:
    rows = []
    for name, s in systems.items():
        rows.append([name, _pct(_get(s, "heldout", "intent_acc")),
                     _pct(_get(s, "heldout", "exact_match")),
                     _pct(_get(s, "oos", "false_accept")),
                     _pct(_get(s, "suite", "intent_acc")), _pct(_get(s, "suite", "slots_acc")),
                     _pct(_get(s, "dev", "intent_acc")), _pct(_get(s, "dev", "exact_match"))])
    return _table(["system", "held-out intent", "held-out intent+slots", "out-of-scope "
                   "false accepts", "HA suite intent", "HA suite intent+slots", "dev intent",
                   "dev intent+slots"], rows)


def cost_table(systems: Dict[str, Dict[str, Any]]) -> str:
    rows = []
    for name, s in systems.items():
        size = s.get("model_bytes")
        cold = s.get("cold_p50_ms")
        rows.append([name, f"{s['p50_ms']:.3f}", f"{s['p99_ms']:.3f}",
                     "-" if cold is None else f"{cold:.3f}", f"{s['per_s']:,.0f}",
                     f"{s['cpu_ms_per_command']:.3f}", f"{s['peak_rss_mb']:.0f}",
                     "-" if size is None else f"{size:,}", f"{s['cold_start_s']:.2f}"])
    return _table(["system", "p50 ms", "p99 ms", "p50 ms, caches cold", "commands/s",
                   "CPU ms/command", "peak RSS MB", "model bytes", "cold start s"], rows)


def energy_table(result: Dict[str, Any]) -> str:
    rows = [[name] + [f"{s['energy_mj'][b]:.3f}" for b in BOARDS]
            for name, s in result["systems"].items() if "energy_mj" in s]
    return _table(["system (mJ per command, ESTIMATE)", "Zero 2 W", "3B+", "Pi 4", "Pi 5"],
                  rows)


def floor_table(result: Dict[str, Any]) -> str:
    rows = []
    for name, s in result["systems"].items():
        if "floor" not in s:
            continue
        sh, fl = s["shapes"], s["floor"]
        rows.append([name, f"{sh['op_count']} ({sh.get('xnnpack_partitions', '?')})",
                     f"{sh['macs'] / 1e6:.1f} M",
                     f"{sh['weight_bytes_per_command']:,}", f"{fl['memory_ms']:.4f}",
                     f"{fl['compute_ms']:.4f}", f"{s.get('model_p50_ms', float('nan')):.3f}",
                     f"{fl['model_over_floor']:.1f}x", f"{s['p50_ms']:.3f}",
                     f"{fl['parse_over_floor']:.1f}x"])
    return _table(["model", "operators (XNNPACK partitions)", "MACs/command",
                   "weight bytes/command", "memory floor ms", "compute floor ms",
                   "model p50 ms", "model/floor", "parse p50 ms", "parse/floor"], rows)


def mqtt_table(mqtt: Dict[str, Dict[str, float]]) -> str:
    bare = mqtt["mosquitto-bare"]
    rows = [[name, f"{m['p50_ms']:.3f}", f"{m['p99_ms']:.3f}",
             f"{m['p50_ms'] / bare['p50_ms']:.1f}x", f"{m['p50_ms'] - bare['p50_ms']:.3f}"]
            for name, m in mqtt.items()]
    return _table(["MQTT round trip (QoS 1)", "p50 ms", "p99 ms", "x bare p50",
                   "above bare ms"], rows)


def machine_line(result: Dict[str, Any]) -> str:
    m = result["machine"]
    return (f"{m['cpu']}, {m['cores']} cores at {m['mhz']:.0f} MHz ({', '.join(m['simd'])}), "
            f"load average {m.get('load_average', float('nan')):.1f} at the start (the CPU "
            f"is shared); one core measured now: {m['mem_gbps']:.1f} GB/s copy, "
            f"{m['numpy_f32_gmacs']:.0f} G float32 MAC/s in numpy; theoretical peak "
            f"{m['peak_macs']['float32'] / 1e9:.0f} G float32 and "
            f"{m['peak_macs']['int8'] / 1e9:.0f} G int8 MAC/s")


def tables(result: Dict[str, Any]) -> str:
    inp = result["inputs"]
    out = [f"bench ({result['mode']}, {result['started']}): {machine_line(result)}",
           f"inputs: {inp['heldout']} held-out commands, {inp['oos']} held-out out-of-scope "
           f"sentences, Home Assistant's suite (every {inp['suite_every']} file(s)), dev set: "
           f"{inp['dev']}; {inp['timed']} sentences timed per system", "",
           accuracy_table(result["systems"]), "", cost_table(result["systems"]), "",
           floor_table(result), "", energy_table(result), "",
           "energy: " + result["energy_source"]]
    if result.get("mqtt"):
        out += ["", mqtt_table(result["mqtt"])]
    for what, why in result.get("skipped", {}).items():
        out.append(f"skipped {what}: {why}")
    out.append("")
    for what, t in result.get("targets", {}).items():
        out.append(f"target: {what}: {'MET' if t['ok'] else 'NOT MET'} "
                   + ", ".join(f"{k} {v:.3f}" for k, v in t.items() if k != "ok"))
    out.append(f"\n{result.get('seconds', 0):.0f} s in all")
    return "\n".join(out)


def plots(result: Dict[str, Any], folder: Path) -> List[Path]:
    """Accuracy (dev set where present, else held-out) against p50 latency on a log axis,
    and model bytes per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    systems = result["systems"]
    key = "dev" if all("dev" in s for s in systems.values()) else "heldout"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, s) in enumerate(systems.items()):
        acc = 100 * s[key]["intent_acc"]
        colour = "tab:blue" if name.startswith("edge-slm") else "tab:grey"
        ax.scatter(s["p50_ms"], acc, s=60, c=colour)
        ax.annotate(name, (s["p50_ms"], acc), textcoords="offset points",
                    xytext=(6, 8 - 14 * (i % 3) if name.startswith("edge-slm") else 4))
    ax.set_xscale("log")
    ax.set_xlabel("latency per command, p50 (ms, one thread, log scale)")
    ax.set_ylabel(f"{'dev set' if key == 'dev' else 'held-out'} intent accuracy (%)")
    ax.set_title("accuracy against latency")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    first = folder / "bench-accuracy-latency.png"
    fig.savefig(first, dpi=100)
    plt.close(fig)
    sized = {n: s["model_bytes"] for n, s in systems.items() if s.get("model_bytes")}
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh(list(sized), [v / 1e6 for v in sized.values()],
            color=["tab:blue" if n.startswith("edge-slm") else "tab:grey" for n in sized])
    ax.set_xscale("log")
    ax.set_xlim(right=max(sized.values()) / 1e6 * 4)  # room for the largest one's label
    ax.set_xlabel("model size (MB, log scale; fuzzywuzzy: its expanded sentences)")
    for i, v in enumerate(sized.values()):
        ax.annotate(f"{v / 1e6:.2f} MB", (v / 1e6, i), textcoords="offset points",
                    xytext=(4, -4))
    fig.tight_layout()
    second = folder / "bench-model-size.png"
    fig.savefig(second, dpi=100)
    plt.close(fig)
    return [first, second]


def readme_section(result: Dict[str, Any]) -> str:
    inp = result["inputs"]
    command = "--run DIR --write-readme" if result.get("with_run", True) else "--write-readme"
    lines = [BEGIN, "",
             f"Measured by `python scripts/bench.py {command}` ({result['mode']} "
             f"run, {result['started']}) on {machine_line(result)}.", "",
             "Every system gets the same sentences in one run: "
             f"{inp['heldout']} commands from held-out templates and {inp['oos']} out-of-scope "
             "sentences (the convert gate's held-out split, re-created), Home Assistant's "
             "English intent suite with each test's home and satellite, and the dev set of real "
             f"commands ({'present' if 'not present' not in inp['dev'] else 'not present'}). "
             "Accuracy is what a user gets: the answer after each system's own threshold "
             "(`edge_slm.runtime.metrics`, as `edge-slm eval` scores; intent+slots: the intent "
             "and every slot right). Each system runs in a fresh process on one core and one "
             "thread for its accuracy, peak RSS (VmHWM, the Python interpreter included) and "
             "cold start (imports and loading). Latency per command is timed with every "
             "system loaded in one process on one core, in turn, so that the machine's own "
             f"noise falls on all of them alike: {inp['timed']} sentences (taken in turn from "
             "each of the inputs) in blocks of 100, each system parsing a block after "
             "re-warming on ten sentences, the order rotating, three rounds (p50, p99, "
             "commands/s, CPU time); \"caches cold\" parses each sentence with every system "
             "in turn, so that each parse follows the others' work (a command arriving after "
             "the house did something else). "
             "hassil: Home Assistant's matcher with the home as slot lists; fuzzywuzzy: "
             "Rhasspy's approach (Home Assistant's templates expanded with the home, best "
             "rapidfuzz ratio); teacher-minilm: the fine-tuned "
             "MiniLM the student learnt from (PyTorch, float).", "",
             accuracy_table(result["systems"]), "", cost_table(result["systems"]), "",
             "![accuracy against latency](docs/img/bench-accuracy-latency.png)",
             "![model size](docs/img/bench-model-size.png)", "",
             "The physical floor of one command on this machine: the weight bytes it reads "
             "over the measured memory bandwidth, and its multiply-accumulates (counted from "
             "the model's shapes) over one core's theoretical peak (int8 dot products for the "
             "quantized models, float32 for float):", "", floor_table(result), "",
             "Energy per command on a Raspberry Pi is an ESTIMATE, not a measurement: CPU time "
             "measured here, times an assumed per-core slowdown of each board ("
             + ", ".join(f"{b} {f:g}x" for b, f in result["board_speed"].items())
             + "), times the board's published power step from idle to load ("
             "`edge_slm/daemon/energy.py`). Sources: " + result["energy_source"] + ".", "",
             energy_table(result), ""]
    if result.get("mqtt"):
        lines += ["End to end over MQTT (`edge-slm serve` on mosquitto, query to intent reply), "
                  "beside mosquitto's bare round trip, the floor:", "",
                  mqtt_table(result["mqtt"]), ""]
    for what, t in result.get("targets", {}).items():
        lines.append(f"- target, {what}: {'met' if t['ok'] else 'NOT met'} ("
                     + ", ".join(f"{k} {v:.3f}" for k, v in t.items() if k != "ok") + ")")
    for what, why in result.get("skipped", {}).items():
        lines.append(f"- {what} not measured: {why}")
    lines += ["", END]
    return "\n".join(lines)


def write_readme(result: Dict[str, Any], repo: Path) -> None:
    """Rewrite the section between the markers of README.md (inserted before
    '## Development' the first time) and the plots beside it."""
    plots(result, repo / IMG)
    path = repo / "README.md"
    text = path.read_text(encoding="utf-8")
    section = readme_section(result)
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda m: section, text,
                      flags=re.S)
    else:
        text = text.replace("## Development", "## Performance\n\n" + section
                            + "\n\n## Development", 1)
    path.write_text(text, encoding="utf-8")
