"""Capped exponential backoff with jitter (`edge_slm.daemon.backoff`), on fixed random
numbers: doubling up to the cap, reset after a connection, jitter within its fraction, bad
settings refused."""

from __future__ import annotations

import pytest

from edge_slm.daemon.backoff import Backoff


def test_backoff_doubles_up_to_the_cap_and_resets():
    b = Backoff(min_s=1.0, max_s=10.0, factor=2.0, jitter=0.5, rng=lambda: 0.0)
    assert [b.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert b.failures == 6
    b.reset()
    assert b.next() == 1.0


def test_backoff_jitter_takes_off_at_most_its_fraction():
    b = Backoff(min_s=4.0, max_s=4.0, jitter=0.25, rng=lambda: 0.999999)
    assert 3.0 <= b.next() < 3.0001
    assert Backoff(min_s=4.0, max_s=4.0, jitter=0.25, rng=lambda: 0.0).next() == 4.0


@pytest.mark.parametrize("kw", [{"min_s": 0}, {"min_s": 5, "max_s": 1}, {"factor": 0.5},
                                {"jitter": 1.5}])
def test_backoff_refuses_bad_settings(kw):
    with pytest.raises(ValueError):
        Backoff(**kw)
