"""Error bars for per-query metrics: bootstrap confidence intervals and a paired test between two systems."""

from __future__ import annotations

from collections.abc import Sequence
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
    the one observed. The mean difference comes with a bootstrap confidence interval, and with the smallest
    difference these queries could detect (``detectable_diff``, see :func:`detectable_difference`).
    """
    a, b = _as_array(a), _as_array(b)
    if a.shape != b.shape:
        raise ValueError(f"A paired test needs the same queries on both sides ({len(a)} vs {len(b)} values).")
    diff = b - a
    observed = abs(diff.mean())
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, n, 1000):
        signs = rng.choice((-1.0, 1.0), size=(min(1000, n - start), len(diff)))
        extreme += int((np.abs(signs @ diff) / len(diff) >= observed - 1e-12).sum())
    ci = bootstrap_ci(diff, n=1000, alpha=alpha, seed=seed)
    return {"mean_diff": ci.mean, "ci_low": ci.low, "ci_high": ci.high, "p_value": (extreme + 1) / (n + 1),
            "n_queries": len(diff), "test": "paired sign-flip permutation test, two-sided",
            "detectable_diff": detectable_difference(diff, alpha=alpha, seed=seed), "power": POWER}


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
