"""How faithful and how fast the project's zero-cost proxies are, against NAS-Bench-Suite-Zero's.

For benchmarks and reports only (reads published values and accuracies); never imported by search code.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau, spearmanr

from teg_plugin.proxies import ProxyResult

#: The published column of a proxy whose name differs from the project's (NAS-Bench-Suite-Zero's
#: ``params_mb``, ``flops_m``; Zen-score from the all-architecture table).
PUBLISHED_COLUMN: dict[str, str] = {"params": "params_mb", "flops": "flops_m", "zen": "zen_cifar10"}

#: What NAS-Bench-Suite-Zero writes where a proxy failed (jacov, epe_nas); read as "undefined".
FAILURE_MARKER = -1e8

#: A computed proxy may cost at most this many times the published per-architecture time (the
#: published times were measured on GPUs, these on the machine that runs the check).
TIME_FACTOR = 3.0


@dataclass(frozen=True)
class ProxyCheck:
    """One computed proxy against its published values on the same architectures.

    ``n`` architectures have both a computed and a published value (a flagged computed value, a
    non-finite or :data:`FAILURE_MARKER` published one leave an architecture out of all three
    coefficients); ``n_bad`` computed values were flagged. ``spearman_published`` is Spearman ρ of
    computed against published; ``kendall_computed`` and ``kendall_published`` are each one's
    Kendall τ with accuracy over those ``n``. ``seconds`` is the median time of the values computed
    in this run (``n_timed``; cached ones took none), ``published_seconds`` the median of the
    published ``<column>_time_s`` (NaN when the table has none).
    """

    name: str
    published: str
    n: int
    n_bad: int
    spearman_published: float
    kendall_computed: float
    kendall_published: float
    n_timed: int
    seconds: float
    published_seconds: float

    @property
    def within_time(self) -> bool | None:
        """Whether ``seconds`` is at most :data:`TIME_FACTOR` times ``published_seconds`` (``None``: unknown)."""
        if self.n_timed == 0 or math.isnan(self.published_seconds):
            return None
        return self.seconds <= TIME_FACTOR * self.published_seconds


def published_value(row: Mapping[str, float], column: str) -> float:
    """``row[column]``, NaN when missing, non-finite or :data:`FAILURE_MARKER`."""
    value = row.get(column, math.nan)
    return value if math.isfinite(value) and value != FAILURE_MARKER else math.nan


def check_proxies(
    texts: Sequence[str],
    results: Sequence[Mapping[str, ProxyResult]],
    published: Mapping[str, Mapping[str, float]],
    accuracy: Sequence[float],
) -> list[ProxyCheck]:
    """A :class:`ProxyCheck` per proxy of ``results`` (one dict per architecture of ``texts``) that
    ``published`` (arch string -> column -> value) has a column for."""
    if not results:
        return []
    checks = []
    columns = set().union(*(row.keys() for row in published.values())) if published else set()
    for name in results[0]:
        column = PUBLISHED_COLUMN.get(name, name)
        if column not in columns:
            continue
        computed = [r[name] for r in results]
        theirs = [published_value(published.get(t, {}), column) for t in texts]
        keep = [
            i
            for i, (c, p) in enumerate(zip(computed, theirs))
            if not c.bad and not math.isnan(p) and not math.isnan(accuracy[i])
        ]
        ours_v = np.array([computed[i].value for i in keep])
        theirs_v = np.array([theirs[i] for i in keep])
        acc_v = np.array([accuracy[i] for i in keep])
        timed = [c.seconds for c in computed if c.seconds > 0]
        times = [published.get(t, {}).get(f"{column}_time_s", math.nan) for t in texts]
        times = [x for x in times if math.isfinite(x)]
        checks.append(
            ProxyCheck(
                name=name,
                published=column,
                n=len(keep),
                n_bad=sum(c.bad for c in computed),
                spearman_published=_coefficient(spearmanr, ours_v, theirs_v),
                kendall_computed=_coefficient(kendalltau, ours_v, acc_v),
                kendall_published=_coefficient(kendalltau, theirs_v, acc_v),
                n_timed=len(timed),
                seconds=statistics.median(timed) if timed else math.nan,
                published_seconds=statistics.median(times) if times else math.nan,
            )
        )
    return checks


def _coefficient(function: Callable[[np.ndarray, np.ndarray], Sequence[float]], a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(function(a, b)[0])
