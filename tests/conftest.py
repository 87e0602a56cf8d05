"""Shared fixtures: the default English corpus builder is loaded once per session. The
hypothesis profiles of the fuzz tests (tests/test_fuzz_*.py): "ci" (the default: 300
examples per target, derandomized, so CI is repeatable) and "soak" (10,000 examples, random;
scripts/soak.sh), chosen by EDGE_SLM_FUZZ_PROFILE or pytest's --hypothesis-profile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the dev extra is not installed: the fuzz tests skip themselves
    pass
else:
    _FUZZ = dict(deadline=5000, suppress_health_check=[HealthCheck.too_slow,
                                                       HealthCheck.data_too_large])
    settings.register_profile("ci", max_examples=300, derandomize=True, database=None, **_FUZZ)
    settings.register_profile("soak", max_examples=10000, **_FUZZ)
    settings.load_profile(os.environ.get("EDGE_SLM_FUZZ_PROFILE", "ci"))


@pytest.fixture(scope="session")
def en_builder():
    """A CorpusBuilder on the shipped English templates and inventory."""
    from edge_slm.corpus.build import CorpusBuilder, CorpusConfig

    return CorpusBuilder(CorpusConfig(lang="en", count=1000, seed=1))


@pytest.fixture(scope="session")
def en_records(en_builder):
    """60,000 records of the default English corpus (seed 11)."""
    from dataclasses import replace

    from edge_slm.corpus.build import CorpusBuilder

    cfg = replace(en_builder.config, count=60000, seed=11)
    builder = CorpusBuilder(cfg, tset=en_builder.tset, inventory=en_builder.inventory)
    return list(builder.records())


SMALL_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "small.yaml"


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """The small training profile run once: (run folder, report, log lines)."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("torch")
    from edge_slm.model.pipeline import load_train_config, run_training

    out = tmp_path_factory.mktemp("train")
    logs = []
    report = run_training(load_train_config(SMALL_CONFIG), out, progress=False, log=logs.append)
    return out, report, logs


@pytest.fixture(scope="session")
def small_bundles(small_run, tmp_path_factory):
    """The small run converted (float, int8, int4) through the gate: (out folder, report).
    Minutes of training make a weak model: its accuracy and its false accepts are not held to
    the shipped bundles' limits here (test_convert_build tests those limits)."""
    from edge_slm.convert.build import ConvertConfig, convert

    out = tmp_path_factory.mktemp("convert")
    config = ConvertConfig(quants=["float", "int8", "int4"], eval_sentences=300,
                           latency_runs=50, margin=100.0, max_false_accept=1.0)
    report = convert(small_run[0] / "model", out, config, log=lambda m: None, progress=False)
    return out, report


@pytest.fixture(scope="session")
def tiny_student():
    """A small untrained student (two layers, 600 words) for export and conversion tests."""
    pytest.importorskip("tensorflow")
    from edge_slm.model.student import ModelConfig, build_student

    return build_student(ModelConfig(vocab_size=600, n_intents=6, n_tags=9, n_frames=4,
                                     n_heads=[2, 3], ffn_dims=[64, 96], d_model=64))
