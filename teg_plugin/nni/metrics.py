"""What TEG reports to NNI, and how a reported result is read back.

Every TEG trial reports one final result, a dict (``nni.report_final_result``)::

    {"default": -1.5, "ntk_cond": 41.2, "regions": 530.0, "kr_mse": 0.081, "bad": False}

* ``ntk_cond``, ``regions``, ``kr_mse``: the three TEG indicators (T, E, G; ``None`` where undefined);
* ``bad``: the architecture produced an undefined indicator (it ranks after every good one);
* ``default``: the number NNI sorts and plots, **higher is better** (NNI maximises). It is the
  rank-based score of :mod:`teg_plugin.optuna`'s zero-cost objective, negated: minus the
  architecture's TEG rank-sum among every result of the experiment reported so far (this one
  included), divided by the number of good results among them. It lies in ``[-3, 0)``; ``-3/n``
  means best on all three indicators among ``n``. A ``bad`` architecture gets :data:`BAD_DEFAULT`
  (-4, below every good value). "So far" is the evaluator's in-process history in NNI's sequential
  engine, and a shared result log in the experiment's folder (:func:`log_and_rank`) when each trial
  is its own process (``nnictl``, the training-service engine). The value is relative to the moment it
  was reported, so the exact TEG ranking of an experiment is always recomputed from the three
  indicators (:meth:`TEGStrategy.list_models`, ``export_top_models``, :meth:`TEGTuner.best`).

Search code reads only the indicators and ``bad``; ``default`` is for NNI's sorting and web UI.

:class:`~teg_plugin.nni.TEGEvaluator` reports this dict itself. A trial script of your own (an
``nnictl`` trial for :class:`~teg_plugin.nni.TEGTuner`, as ``examples/nnictl/trial.py``) writes it
with :func:`teg_metrics`, ranking itself with :func:`log_and_rank` in :func:`trial_experiment_dir`;
:func:`score_from_metrics` reads any of them back.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from teg_plugin._proxy_table import keyed_proxy_values
from teg_plugin.scores import INDICATORS, TEGScore, rank_sums

__all__ = [
    "BAD_DEFAULT",
    "METRIC_KEYS",
    "RESULT_LOG",
    "log_and_rank",
    "rank_default",
    "score_from_metrics",
    "teg_metrics",
    "trial_experiment_dir",
]

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


def proxy_metrics(values: Mapping[str, float]) -> dict[str, float | None]:
    """``{"proxy_<name>": value}`` for zero-cost proxy values, added to a final result beside the
    indicators (a flagged proxy's NaN becomes ``None``).

    Example:
        >>> proxy_metrics({"synflow": 90.5, "nwot": float("nan")})
        {'proxy_synflow': 90.5, 'proxy_nwot': None}
    """
    return keyed_proxy_values(values)


def parse_metric(metric: Any) -> Any:
    """A reported final result as NNI may hand it over: a JSON string decoded (NNI's exported
    records and some dispatcher paths hold ``value`` as text), anything else as it is.

    Example:
        >>> parse_metric('{"default": 1.5, "proxy_nwot": 40.0}'), parse_metric(0.5), parse_metric("not json")
        ({'default': 1.5, 'proxy_nwot': 40.0}, 0.5, 'not json')
    """
    if isinstance(metric, str):
        import json

        try:
            return json.loads(metric)
        except ValueError:
            return metric
    return metric


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
    metric = parse_metric(metric)
    if not isinstance(metric, Mapping) or any(key not in metric for key in INDICATORS):
        raise ValueError(
            f"a TEG result is a dict with {', '.join(INDICATORS)} (reported by TEGEvaluator or "
            f"examples/nnictl/trial.py); got {metric!r}"
        )
    return TEGScore.from_dict(metric)


def log_and_rank(path: str | os.PathLike[str], score: TEGScore, **extra: Any) -> float:
    """Append ``score`` to the shared result log at ``path`` and return its ``default`` among every
    result logged before it (:func:`rank_default`).

    Trials of one ``nnictl`` experiment run in separate processes; a JSON-lines log in the
    experiment's folder (guarded by a file lock, so concurrent trials are safe) lets each of them rank
    itself among the trials that reported before it, as :mod:`teg_plugin.optuna` does within a study.
    ``extra`` (e.g. ``arch=...``) is stored with the indicators.

    Example:
        >>> import tempfile, pathlib
        >>> log = pathlib.Path(tempfile.mkdtemp()) / "results.jsonl"
        >>> log_and_rank(log, TEGScore(ntk_cond=20.0, regions=50.0, kr_mse=0.2))
        -3.0
        >>> log_and_rank(log, TEGScore(ntk_cond=10.0, regions=100.0, kr_mse=0.1))
        -1.5
    """
    import json

    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=60):
        earlier = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    try:
                        earlier.append(score_from_metrics(json.loads(line)))
                    except ValueError:
                        continue
        default = rank_default(score, earlier)
        record = {**teg_metrics(score, default), **extra}
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
    return default


#: File name of the shared result log in an experiment's folder (see :func:`log_and_rank`).
RESULT_LOG = "teg_results.jsonl"


def trial_experiment_dir() -> Path | None:
    """The folder of the NNI experiment this trial process belongs to, or ``None`` when the process
    is not an NNI trial (e.g. the sequential engine, or a script run by hand).

    NNI's local training service runs each trial in ``<experiment>/environments/local-env/trials/<id>``
    with ``NNI_PLATFORM``, ``NNI_EXP_ID`` and ``NNI_OUTPUT_DIR`` set.
    """
    trial_dir = os.environ.get("NNI_OUTPUT_DIR") or os.environ.get("NNI_SYS_DIR")
    if not trial_dir or not os.environ.get("NNI_PLATFORM"):
        return None
    trial_path = Path(trial_dir).resolve()
    experiment_id = os.environ.get("NNI_EXP_ID")
    for parent in trial_path.parents:
        if experiment_id and parent.name == experiment_id:
            return parent
    return trial_path.parent
