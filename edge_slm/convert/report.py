"""The conversion report: the gate's table in markdown and its plot (size, accuracy and
latency per variant), from the report `convert` returns (`OUT/report.md`, `OUT/report.png`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence


def format_report(report: Dict[str, Any]) -> str:
    """The gate's table in markdown."""
    head = ("| variant | status | bundle bytes | held-out intent (top-1) | held-out answered "
            "right | held-out slot F1 | OOS false accepts | OOS false accepts in a home | "
            "dev intent (top-1) | dev answered right | dev rejected, top-1 right | compound, "
            "every command right | agreement with float | model p50 ms | model p99 ms | "
            "parse p50 ms |")
    lines = [head, "|" + "---|" * 16]
    for q, e in report["variants"].items():
        m = e["metrics"]

        def pct(path: Sequence[str]) -> str:
            v: Any = m
            for p in path:
                if not isinstance(v, dict) or p not in v:
                    return "-"
                v = v[p]
            return f"{100 * v:.2f}%"
        lines.append(
            f"| {q} | {e['status']} | {m.get('bundle_bytes', 0):,} | "
            f"{pct(['heldout', 'top1_acc'])} | {pct(['heldout', 'intent_acc'])} | "
            f"{pct(['heldout', 'slot_f1'])} | {pct(['oos', 'false_accept'])} | "
            f"{pct(['oos_home', 'false_accept'])} | "
            f"{pct(['dev', 'top1_acc'])} | {pct(['dev', 'intent_acc'])} | "
            f"{pct(['dev', 'rejected_top_right'])} | {pct(['compound', 'compound_all_right'])} | "
            f"{pct(['agreement_with_float'])} | "
            f"{m['model_p50_ms']:.3f} | {m['model_p99_ms']:.3f} | "
            f"{m['heldout']['parse_p50_ms']:.3f} |")
    lines += ["", "Intent (top-1): the model's best guess; answered right: the answer after the "
              "calibrated threshold (a rejected command counts as wrong); rejected, top-1 right: "
              "commands the threshold turned away although the best guess was right. Slot F1 "
              "after resolution against the home, on the answers. In a home: the same "
              "out-of-scope sentences with the bundle's example home as the user's own, "
              "where a sentence naming one of its devices may be taken for a command. Dev "
              "records that say their home are answered in it."]
    notes = [f"- {q}: " + "; ".join(e["reasons"]) for q, e in report["variants"].items()
             if e["reasons"]]
    if notes:
        lines += ["", "Refused:"] + notes
    return "\n".join(lines)


def plot_report(report: Dict[str, Any], path: Path) -> None:
    """Size vs accuracy vs latency per variant."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for q, e in report["variants"].items():
        m = e["metrics"]
        kb = m["bundle_bytes"] / 1024
        acc = 100 * m["heldout"]["top1_acc"]
        colour = "tab:red" if e["status"] == "refused" else "tab:blue"
        axes[0].scatter(kb, acc, s=40 + 400 * m["model_p50_ms"], c=colour, alpha=0.7)
        axes[0].annotate(q, (kb, acc), textcoords="offset points", xytext=(6, 6))
        axes[1].scatter(kb, m["model_p50_ms"], c=colour)
        axes[1].annotate(q, (kb, m["model_p50_ms"]), textcoords="offset points",
                         xytext=(6, 6))
    axes[0].set_xlabel("bundle size (KiB)")
    axes[0].set_ylabel("held-out intent accuracy, top-1 (%)")
    axes[0].set_title("accuracy vs size (marker area ~ latency)")
    axes[1].set_xlabel("bundle size (KiB)")
    axes[1].set_ylabel("model latency p50 (ms, 1 thread)")
    axes[1].set_title("latency vs size (red: refused)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
