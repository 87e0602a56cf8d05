"""Calibrated confidence: temperature scaling, expected calibration error, rejection threshold.

The intent confidence is the softmax of logits / T; T is fitted on the validation split by
minimizing negative log-likelihood. A command is accepted when its best intent is not
"no intent" and its command score, 1 - p(no intent), reaches the threshold, chosen as the
lowest one whose false-accept rate on out-of-scope validation sentences stays within the
target. The score is not the best intent's own probability: "dim the hall" torn between
HassLightSet and HassTurnOff is plainly a command, and rejecting it for that doubt threw
away a tenth of the real commands of the dev set at the same false-accept rate.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature."""
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood at a temperature."""
    p = softmax(logits, temperature)
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(labels)), labels], 1e-12))))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimizes NLL (log-grid, then golden-section)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 60))
    losses = [nll(logits, labels, t) for t in grid]
    k = int(np.argmin(losses))
    lo, hi = np.log(grid[max(0, k - 1)]), np.log(grid[min(len(grid) - 1, k + 1)])
    g = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(logits, labels, np.exp(a)) < nll(logits, labels, np.exp(b)):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-1 confidence over equal-width bins."""
    conf = probs.max(-1)
    correct = (probs.argmax(-1) == labels).astype(np.float64)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def command_score(probs: np.ndarray) -> np.ndarray:
    """How sure the model is that a row is a command at all: 1 - p(no intent)."""
    return 1.0 - probs[..., 0]


def command_log_odds(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Per row, the log-odds of a command against "no intent" at `temperature`: the log of
    the intents' summed probability over p(no intent)."""
    z = logits / temperature
    top = z[:, 1:].max(1)
    return top + np.log(np.exp(z[:, 1:] - top[:, None]).sum(1)) - z[:, 0]


def accept(probs: np.ndarray, threshold: float) -> Tuple[np.ndarray, np.ndarray]:
    """(accepted mask, predicted intent) with "no intent" (index 0) never accepted."""
    pred = probs.argmax(-1)
    return (pred != 0) & (command_score(probs) >= threshold), pred


def choose_threshold(oos_probs: np.ndarray, target_far: float) -> float:
    """Lowest threshold whose false-accept rate on out-of-scope rows is <= target_far."""
    if len(oos_probs) == 0:
        return 0.5
    pred = oos_probs.argmax(-1)
    conf = command_score(oos_probs)
    accepted_conf = np.sort(conf[pred != 0])[::-1]  # scores that would be false accepts
    allowed = int(np.floor(target_far * len(oos_probs)))
    if len(accepted_conf) <= allowed:
        return 0.0
    # Reject everything at or below the (allowed+1)-th highest false-accept confidence.
    return float(np.nextafter(accepted_conf[allowed], 1.0))
