"""Shared fixtures: the default English corpus builder is loaded once per session."""

from __future__ import annotations

import pytest


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
