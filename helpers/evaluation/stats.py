"""Error bars for per-query metrics: bootstrap confidence intervals and a paired test between two systems."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import NamedTuple

import numpy as np


class CI(NamedTuple):
    """A mean with the bounds of its confidence interval."""

    mean: float
    low: float
    high: float


def bootstrap_ci(per_query_values: Sequence[float], n: int = 1000, alpha: float = 0.05, seed: int = 0) -> CI:
    """Percentile bootstrap interval of the mean: resample the queries ``n`` times with replacement."""
    values = _as_array(per_query_values)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return CI(float(values.mean()), float(low), float(high))


def paired_test(a: Sequence[float], b: Sequence[float], n: int = 10_000, alpha: float = 0.05,
                seed: int = 0) -> dict:
    """Is ``b`` better than ``a`` on the same queries? Sign-flip permutation test on per-query differences.

    Under "no difference" each query's difference ``b - a`` is as likely negative as positive, so the
    p-value is the share of random sign flips whose mean difference is at least as large (two-sided) as
    the one observed. The interval is that test inverted: the true mean differences the same sign flips
    do not reject at ``alpha``, so it excludes 0 exactly when p < ``alpha`` and a verdict never contradicts
    its interval (a bootstrap interval can, on a few dozen queries). It comes with the smallest difference
    these queries could detect (``detectable_diff``, see :func:`detectable_difference`).
    """
    a, b = _as_array(a), _as_array(b)
    if a.shape != b.shape:
        raise ValueError(f"A paired test needs the same queries on both sides ({len(a)} vs {len(b)} values).")
    diff = b - a
    p_value = sign_flip_p_values(diff, n, seed)
    mean = float(diff.mean())
    low = _boundary(p_value, mean, float(diff.min()), alpha, outward=min)
    high = _boundary(p_value, mean, float(diff.max()), alpha, outward=max)
    return {"mean_diff": mean, "ci_low": low, "ci_high": high, "p_value": p_value(0.0),
            "n_queries": len(diff), "test": "paired sign-flip permutation test, two-sided (interval: its "
            "inversion)", "detectable_diff": detectable_difference(diff, alpha=alpha, seed=seed),
            "power": POWER}


def sign_flip_p_values(diff: np.ndarray, n: int = 10_000, seed: int = 0) -> Callable[[float], float]:
    """``p(shift)``: the two-sided sign-flip p-value of "the mean difference is ``shift``". The same ``n``
    random flips serve every shift: flipping ``diff - shift`` gives ``flips @ diff - shift * flips.sum``."""
    rng = np.random.default_rng(seed)
    flipped, balance = [], []
    for start in range(0, n, 1000):  # 1,000 flips at a time: memory stays flat with many queries
        signs = rng.choice((-1.0, 1.0), size=(min(1000, n - start), len(diff)))
        flipped.append(signs @ diff / len(diff))
        balance.append(signs.mean(axis=1))
    flipped, balance, mean = np.concatenate(flipped), np.concatenate(balance), diff.mean()

    def p_value(shift: float) -> float:
        extreme = np.count_nonzero(np.abs(flipped - shift * balance) >= abs(mean - shift) - 1e-12)
        return float((extreme + 1) / (n + 1))

    return p_value


def _boundary(p_value: Callable[[float], float], inside: float, edge: float, alpha: float,
              outward: Callable[[float, float], float], steps: int = 50) -> float:
    """Where ``p_value`` falls below ``alpha`` between ``inside`` (the observed mean, never rejected) and
    ``edge`` (the extreme difference, ``outward`` of it: min or max). When even ``edge`` is not rejected (a
    handful of queries: no flip is rare enough), nothing beyond it is either: the bound reaches 0 too."""
    if p_value(edge) >= alpha:
        return outward(edge, 0.0)
    for _ in range(steps):
        middle = (inside + edge) / 2
        inside, edge = (middle, edge) if p_value(middle) >= alpha else (inside, middle)
    return inside


POWER = 0.8


def detectable_difference(diff: Sequence[float], alpha: float = 0.05, power: float = POWER, n: int = 1000,
                          seed: int = 0) -> float:
    """The smallest true mean difference these queries detect with probability ``power`` at level ``alpha``.

    (z[1 - alpha/2] + z[power]) times the standard error of the mean paired difference, the standard error
    taken from ``n`` bootstrap resamples of the queries: 2.8 standard errors at the defaults. It shrinks
    with the square root of the number of queries.
    """
    values = _as_array(diff)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return float(z * means.std(ddof=1))


def _as_array(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError("Expected a non-empty list of per-query values.")
    return array
