"""The training config file (edge_slm/model/pipeline.py): a section names only what it changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_slm.errors import ConfigError
from edge_slm.model.pipeline import TrainConfig, load_train_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_a_partial_section_keeps_the_runs_own_defaults(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("corpus:\n  oos_fraction: 0.2\nrecover:\n  batch_size: 16\n"
                    "data:\n  target_false_accept: 0.0075\n")
    cfg = load_train_config(path)
    default = TrainConfig()
    assert cfg.corpus.oos_fraction == 0.2
    # The run's corpus is 160,000 sentences, not CorpusConfig's own 10,000.
    assert cfg.corpus.count == default.corpus.count == 160000
    # The recovery keeps its 2 epochs at 1e-3, not DistillConfig's 5 at 1.5e-3.
    assert (cfg.recover.batch_size, cfg.recover.epochs, cfg.recover.lr) == (16, 2.0, 1e-3)
    assert cfg.data.target_false_accept == 0.0075
    assert cfg.data.extra_sentences == default.data.extra_sentences
    assert cfg.model == default.model and cfg.distill == default.distill


def test_the_default_file_is_the_built_in_default():
    assert load_train_config(CONFIGS / "default.yaml") == TrainConfig()


@pytest.mark.parametrize("text", ["corpus:\n  nope: 1\n", "corpus: 3\n", "nope: {}\n"])
def test_unknown_keys_and_bad_sections_are_refused(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_train_config(path)
