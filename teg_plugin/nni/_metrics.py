"""What TEG reports to NNI, and how a reported result is read back.

Every TEG trial reports one final result, a dict (``nni.report_final_result``)::

    {"default": -1.5, "ntk_cond": 41.2, "regions": 530.0, "kr_mse": 0.081, "bad": False}

* ``ntk_cond``, ``regions``, ``kr_mse``: the three TEG indicators (T, E, G; ``None`` where undefined);
* ``bad``: the architecture produced an undefined indicator (it ranks after every good one);
* ``default``: the number NNI sorts and plots, **higher is better** (NNI maximises). It is the
  rank-based score of :mod:`teg_plugin.optuna`'s zero-cost objective, negated: minus the
  architecture's TEG rank-sum among every result reported so far by the same process (this one
  included), divided by the number of good results among them. It lies in ``[-3, 0)``; ``-3/n``
  means best on all three indicators among ``n``. A ``bad`` architecture gets :data:`BAD_DEFAULT`
  (-4, below every good value). The value is relative to what the reporting process had seen when it
  reported, so the exact TEG ranking of an experiment is always recomputed from the three indicators
  (:meth:`TEGStrategy.list_models`, ``export_top_models``, :meth:`TEGTuner.best`).

Search code reads only the indicators and ``bad``; ``default`` is for NNI's sorting and web UI.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from teg_plugin.scores import INDICATORS, TEGScore, rank_sums

#: ``default`` of a bad architecture: below every good value (those lie in ``[-3, 0)``).
BAD_DEFAULT = -4.0
#: The keys of every TEG final result.
METRIC_KEYS: tuple[str, ...] = ("default", *INDICATORS, "bad")


def rank_default(score: TEGScore, others: Iterable[TEGScore]) -> float:
    """``default`` of ``score`` among ``others`` (the earlier results): minus its TEG rank-sum within
    ``[score, *others]`` divided by the number of good scores among them; :data:`BAD_DEFAULT` if bad.

    Example:
        >>> good = TEGScore(ntk_cond=10.0, regions=100.0, kr_mse=0.1)
        >>> worse = TEGScore(ntk_cond=20.0, regions=50.0, kr_mse=0.2)
        >>> rank_default(good, [worse]), rank_default(worse, [good])
        (-1.5, -3.0)
    """
    if score.bad:
        return BAD_DEFAULT
    scores = [score, *others]
    n_good = sum(not s.bad for s in scores)
    return -float(rank_sums(scores)[0]) / n_good


def teg_metrics(score: TEGScore, default: float) -> dict[str, Any]:
    """The final-result dict of ``score`` (JSON-ready: undefined indicators become ``None``)."""
    out: dict[str, Any] = {"default": float(default)}
    for key in INDICATORS:
        value = float(getattr(score, key))
        out[key] = value if math.isfinite(value) else None
    out["bad"] = bool(score.bad)
    return out


def score_from_metrics(metric: Any) -> TEGScore:
    """The :class:`TEGScore` in a reported final result.

    Raises:
        ValueError: ``metric`` is not a dict holding the three indicators (e.g. a bare number, or the
            result of an evaluator other than TEG's).

    A missing ``bad`` reads as ``False``; an indicator that is ``None`` or not finite makes the score bad.

    Example:
        >>> score_from_metrics({"default": -1.0, "ntk_cond": 3.0, "regions": 8.0, "kr_mse": None}).bad
        True
    """
    if isinstance(metric, str):
        import json

        try:
            metric = json.loads(metric)
        except ValueError:
            pass
    if not isinstance(metric, Mapping) or any(key not in metric for key in INDICATORS):
        raise ValueError(
            f"a TEG result is a dict with {', '.join(INDICATORS)} (reported by TEGEvaluator or "
            f"examples/nnictl/trial.py); got {metric!r}"
        )
    values = []
    for key in INDICATORS:
        raw = metric[key]
        try:
            values.append(math.nan if raw is None else float(raw))
        except (TypeError, ValueError):
            values.append(math.nan)
    bad = bool(metric.get("bad", False)) or not all(math.isfinite(v) for v in values)
    reason = metric.get("reason") if bad else None
    if bad and reason is None:
        reason = "undefined indicator"
    return TEGScore(ntk_cond=values[0], regions=values[1], kr_mse=values[2], bad=bad, reason=reason)
