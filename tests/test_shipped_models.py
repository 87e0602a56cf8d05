"""The bundles inside the package: present, within their size budgets, loadable (golden
outputs reproduced here), and the metrics their manifests claim reproduce on held-out
template sentences re-created from the recorded corpus config."""

from __future__ import annotations

import pytest

from edge_slm.bundle import read_bundle
from edge_slm.runtime.engine import IntentEngine, default_bundle_path, shipped_bundles

BUDGET = {"int4": 1_000_000, "int8": 1_600_000}


def test_int8_and_int4_ship():
    names = [p.name for p in shipped_bundles()]
    assert any("int8" in n for n in names) and any("int4" in n for n in names), names
    assert default_bundle_path().exists()


@pytest.mark.parametrize("quant", sorted(BUDGET))
def test_size_budget_and_golden_outputs(quant):
    path = default_bundle_path(quant)
    assert path.stat().st_size <= BUDGET[quant]
    engine = IntentEngine.load(path)  # checks the golden outputs on this runtime
    assert engine.golden_max_diff <= engine.manifest["golden"]["tolerance"]


@pytest.fixture(scope="module")
def heldout_sets():
    """The held-out commands and out-of-scope sentences the gate measured, re-created."""
    pytest.importorskip("hassil")
    from edge_slm.corpus.build import CorpusBuilder, CorpusConfig

    prov = read_bundle(default_bundle_path("int8")).manifest["provenance"]
    n_held, n_oos = prov["eval_sets"]["heldout_templates"], prov["eval_sets"]["oos"]
    held, oos = [], []
    for rec in CorpusBuilder(CorpusConfig(**prov["corpus_config"])).records():
        if rec["split"] != "heldout":
            continue
        if rec["intent"] and len(held) < n_held:
            held.append(rec)
        elif not rec["intent"] and len(oos) < n_oos:
            oos.append(rec)
        if len(held) == n_held and len(oos) == n_oos:
            break
    return held, oos


@pytest.mark.parametrize("quant", sorted(BUDGET))
def test_manifest_metrics_reproduce(quant, heldout_sets):
    from edge_slm.runtime.metrics import evaluate

    held, oos = heldout_sets
    engine = IntentEngine.load(default_bundle_path(quant))
    claimed = engine.manifest["metrics"]
    got_held = evaluate(engine, held)
    got_oos = evaluate(engine, oos)
    for key in ("intent_acc", "top1_acc", "slot_f1", "exact_match"):
        assert got_held[key] == pytest.approx(claimed["heldout"][key], abs=0.002), key
    assert got_oos["false_accept"] == pytest.approx(claimed["oos"]["false_accept"], abs=0.002)


def test_remeasure_gates_the_same_model_again(heldout_sets, tmp_path):
    """scripts/remeasure.py's work on a copy of the shipped int8 bundle: the same model, its
    manifest's held-out figures measured again by this engine (equal to the claimed ones, as
    the engine has not changed since), the agreement with float kept, golden outputs that
    load; a run whose corpus config differs is refused."""
    import json
    import shutil

    from edge_slm.convert.build import remeasure
    from edge_slm.errors import ConfigError

    held, oos = heldout_sets
    src = default_bundle_path("int8")
    before = read_bundle(src).manifest
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text(json.dumps(
        {"corpus": before["provenance"]["corpus_config"]}))
    with open(run / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for rec in held + oos:
            fh.write(json.dumps(rec) + "\n")
    path = tmp_path / "b.slm"
    shutil.copy(src, path)
    metrics, _ = remeasure(path, run, None)
    after = IntentEngine.load(path).manifest  # golden outputs checked on load
    assert after["model_id"] == before["model_id"]
    assert after["metrics"] == {k: v for k, v in metrics.items() if k != "bundle_bytes"}
    assert metrics["bundle_bytes"] == path.stat().st_size
    for key in ("intent_acc", "top1_acc", "slot_f1", "exact_match"):
        assert metrics["heldout"][key] == pytest.approx(before["metrics"]["heldout"][key],
                                                        abs=0.002), key
    assert metrics["agreement_with_float"] == before["metrics"]["agreement_with_float"]
    # a config that names a default the manifest's lacks is the same corpus
    named = dict(before["provenance"]["corpus_config"])
    named.setdefault("calib_fraction", 0.05)
    named.pop("valid_fraction", None)
    (run / "train_config.json").write_text(json.dumps({"corpus": named}))
    remeasure(path, run, None)
    (run / "train_config.json").write_text(json.dumps({"corpus": {"seed": 2}}))
    with pytest.raises(ConfigError, match="corpus config"):
        remeasure(path, run, None)
