"""The whole training chain on the small profile: it learns, saves, reloads, prunes, resumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("torch")

from edge_slm.model.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from edge_slm.model.pipeline import load_train_config, run_training  # noqa: E402

SMALL = Path(__file__).resolve().parent.parent / "configs" / "small.yaml"
STAGES = ["corpus", "tokenizer", "teacher", "teacher_labels", "student", "distillation",
          "pruning", "calibration"]


def test_small_run_learns(small_run):
    out, report, _ = small_run
    res = report["results"]
    assert set(res) == {"teacher", "student_no_teacher", "distilled", "pruned"}
    # 43 classes: chance is about 2%; the small profile must be far above it.
    for name in ("distilled", "pruned"):
        assert res[name]["heldout_templates"]["intent_acc"] > 0.35, res[name]
        # Slots are learnt too (a tagger that has learnt nothing scores about 0; the small
        # profile lands between 0.15 and 0.3 from run to run), and resolution against the
        # home is reported beside them.
        held = res[name]["heldout_templates"]
        assert held["slot_f1"] > 0.1 and held["slot_f1_resolved"] > 0.1, held
    assert (out / "report.md").read_text().startswith("| model |")
    assert (out / "model" / "checkpoint.json").exists()


def test_pruning_makes_the_model_smaller(small_run):
    _, report, _ = small_run
    p = report["params"]
    assert p["pruned"] < p["distilled"] < p["teacher"] / 15
    distilled = load_checkpoint(small_run[0] / "students" / "distilled")
    pruned = load_checkpoint(small_run[0] / "model")
    assert sum(pruned.model.config.n_heads) < sum(distilled.model.config.n_heads)
    assert sum(pruned.model.config.ffn_dims) < sum(distilled.model.config.ffn_dims)
    assert all(d % 8 == 0 for d in pruned.model.config.ffn_dims)  # whole vectors (int4)
    assert pruned.model.config.vocab_size < distilled.model.config.vocab_size
    assert "calibration" in pruned.meta and pruned.meta["calibration"]["temperature"] > 0


def test_checkpoint_round_trip_is_exact(small_run, tmp_path):
    ckpt = load_checkpoint(small_run[0] / "model")
    ids = np.random.default_rng(0).integers(1, ckpt.model.config.vocab_size, size=(8, 32))
    ids[:, 0] = 2
    a = [np.asarray(x) for x in ckpt.model(ids)]
    save_checkpoint(ckpt, tmp_path / "copy")
    again = load_checkpoint(tmp_path / "copy")
    b = [np.asarray(x) for x in again.model(ids)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert again.model.config == ckpt.model.config and again.labels == ckpt.labels


def test_prune_keeps_outputs_close(small_run):
    from edge_slm.model.data import encode, read_jsonl
    from edge_slm.model.prune import PruneConfig, prune
    from edge_slm.model.tokenizer_train import fast_tokenizer

    out = small_run[0]
    ckpt = load_checkpoint(out / "students" / "distilled")
    fast = fast_tokenizer(ckpt.tokenizer_json)
    recs = [r for r in read_jsonl(out / "corpus.jsonl") if r["split"] == "valid"][:400]
    batch = encode(recs, fast, ckpt.labels, ckpt.model.config.max_len, fast.token_to_id("[CLS]"))
    base = np.asarray(ckpt.model(batch.ids)[0])
    same, _, _ = prune(ckpt.model, batch, PruneConfig(0.0, 0.0, prune_vocab=False), [], [])
    assert np.allclose(np.asarray(same(batch.ids)[0]), base, atol=1e-5)
    small, _, rep = prune(ckpt.model, batch, PruneConfig(0.0, 0.1, prune_vocab=False), [], [])
    agree = (np.asarray(small(batch.ids)[0]).argmax(-1) == base.argmax(-1)).mean()
    assert sum(rep["ffn_after"]) < sum(rep["ffn_before"])
    assert agree > 0.85


def test_every_stage_reports_its_own_figures(small_run):
    from edge_slm.model.report import format_table, headline
    from edge_slm.model.tokenizer_train import fast_tokenizer

    out, report, logs = small_run
    stages, res = report["stages"], report["results"]
    assert list(stages) == STAGES
    for name in STAGES:
        assert stages[name]["resumed"] is False and stages[name]["seconds"] >= 0
        assert sum(m.startswith(f"{name} (ran, ") for m in logs) == 1, name
    fig = {name: stages[name]["figures"] for name in STAGES}
    lines = (out / "corpus.jsonl").read_text().splitlines()
    assert fig["corpus"]["sentences"] == len(lines) == sum(fig["corpus"]["splits"].values())
    assert fig["corpus"]["extra"] == len((out / "extra.jsonl").read_text().splitlines())
    assert 0 < fig["corpus"]["calibration"] < 5000
    fast = fast_tokenizer((out / "tokenizer.json").read_text(encoding="utf-8"))
    assert fig["tokenizer"]["vocab"] == fast.get_vocab_size() <= 1200
    assert fig["teacher"]["params"] == report["params"]["teacher"] > 20_000_000
    assert fig["teacher_labels"]["rows"]["train"] == fig["tokenizer"]["student_rows"] == 5000
    # Teacher and students: their figures are their rows of the closing table.
    for stage, row in (("teacher_labels", "teacher"), ("student", "student_no_teacher"),
                       ("distillation", "distilled"), ("calibration", "pruned")):
        assert {k: fig[stage][k] for k in headline(res[row])} == headline(res[row]), stage
    assert fig["student"]["held-out intent acc"] == \
        res["student_no_teacher"]["heldout_templates"]["intent_acc"]
    assert fig["pruning"]["params"] == report["params"]["pruned"] < report["params"]["distilled"]
    assert fig["pruning"]["vocab"] == f"{fast.get_vocab_size()} -> " \
        f"{load_checkpoint(out / 'model').model.config.vocab_size}"
    for key in ("temperature", "threshold", "ece_before", "ece_after"):
        assert fig["calibration"][key] == report["calibration"][key]
    # report.md: the closing table first, as before, then the stages.
    table, rest = (out / "report.md").read_text().split("\n\n", 1)
    assert table == format_table(res)
    assert [row.split(" | ")[0] for row in rest.strip().split("\n")[2:]] == \
        [f"| {name}" for name in STAGES]


def test_rerun_resumes_from_cache(small_run):
    out, report, first_logs = small_run
    assert any("fine-tuning" in m for m in first_logs)
    logs = []
    again = run_training(load_train_config(SMALL), out, progress=False, log=logs.append)
    assert not any("fine-tuning" in m or "student without teacher" in m for m in logs)
    assert again["results"]["pruned"]["heldout_templates"] == \
        report["results"]["pruned"]["heldout_templates"]
    # Every stage resumed, said so, and reported the same figures as when it ran.
    assert list(again["stages"]) == STAGES
    for name in STAGES:
        stage = again["stages"][name]
        assert stage["resumed"] is True, name
        assert stage["figures"] == report["stages"][name]["figures"], name
        assert sum(m.startswith(f"{name} (resumed, ") for m in logs) == 1, name
    assert again["results"] == report["results"]
