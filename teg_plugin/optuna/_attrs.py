"""The user attributes every TEG trial carries, in one place.

Every trial that the sampler, the pruner or the zero-cost objective touches stores these user
attributes (visible in optuna-dashboard and in ``study.trials_dataframe()``):

* ``arch``: the architecture's text form (:meth:`SearchSpace.format`);
* ``index``: its benchmark index (NB201), absent where the space has none;
* ``ntk_cond``, ``regions``, ``kr_mse``: the three TEG indicators (``None`` where undefined);
* ``bad``: whether the architecture is flagged bad (it then ranks after every good one).

A trial **has TEG attributes** once it has ``arch``, the three indicators and ``bad``; rankings
(the pruner, the zero-cost objective's value, :func:`best_trial`) use every such trial except
failed ones (a trial retried after a crash keeps its attributes in the retry).

Search code reads nothing else: benchmark accuracies (``benchmark_*`` attributes written by reports)
are never read here.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from teg_plugin.scores import INDICATORS, TEGScore, rank_sums

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from teg_plugin.spaces._base import SearchSpace

#: The architecture's text form.
ARCH_ATTR = "arch"
#: The architecture's benchmark index (absent where the space has none).
INDEX_ATTR = "index"
#: Whether the architecture is flagged bad.
BAD_ATTR = "bad"
#: The three indicator attributes, in T, E, G order (the names of :data:`teg_plugin.scores.INDICATORS`).
INDICATOR_ATTRS: tuple[str, ...] = INDICATORS
#: Every TEG user attribute (``index`` may be absent).
TEG_ATTRS: tuple[str, ...] = (ARCH_ATTR, INDEX_ATTR, *INDICATOR_ATTRS, BAD_ATTR)
#: The attributes a trial needs to count as scored (``index`` is optional).
_SCORE_ATTRS: tuple[str, ...] = (ARCH_ATTR, *INDICATOR_ATTRS, BAD_ATTR)


def teg_user_attrs(space: SearchSpace, arch: Hashable, score: TEGScore) -> dict[str, Any]:
    """The TEG user attributes of ``arch`` with ``score`` (JSON-ready: NaN and inf become ``None``).

    Example:
        >>> from teg_plugin.spaces import NB201Space
        >>> space = NB201Space()
        >>> arch = space.arch_at(0)
        >>> attrs = teg_user_attrs(space, arch, TEGScore(ntk_cond=12.0, regions=40.0, kr_mse=float("nan"), bad=True))
        >>> attrs["index"], attrs["kr_mse"], attrs["bad"]
        (0, None, True)
    """
    attrs: dict[str, Any] = {ARCH_ATTR: space.format(arch)}
    index = space.index(arch)
    if index is not None:
        attrs[INDEX_ATTR] = int(index)
    for key in INDICATOR_ATTRS:
        value = float(getattr(score, key))
        attrs[key] = value if math.isfinite(value) else None
    attrs[BAD_ATTR] = bool(score.bad)
    return attrs


def proxy_user_attrs(values: Mapping[str, float]) -> dict[str, float | None]:
    """``{"proxy_<name>": value}`` for proxy values (as :meth:`TEGScorer.proxies` gives them; a
    flagged proxy's NaN becomes ``None``).

    Example:
        >>> proxy_user_attrs({"synflow": 90.5, "nwot": float("nan")})
        {'proxy_synflow': 90.5, 'proxy_nwot': None}
    """
    from teg_plugin.proxies import proxy_key

    return {proxy_key(name): (float(v) if math.isfinite(v) else None) for name, v in values.items()}


def checked_proxy_names(proxies: str | Iterable[str]) -> tuple[str, ...]:
    """Proxy names as :func:`teg_plugin.proxies.parse_proxy_names` checks them; ``()`` for none
    (an empty string or list)."""
    if isinstance(proxies, str):
        if not proxies.strip():
            return ()
    else:
        proxies = list(proxies)
        if not proxies:
            return ()
    from teg_plugin.proxies import parse_proxy_names

    return parse_proxy_names(proxies)


def score_from_user_attrs(user_attrs: Mapping[str, Any]) -> TEGScore | None:
    """The :class:`TEGScore` stored in a trial's user attributes, or ``None`` unless it has ``arch``,
    the three indicators and ``bad``.

    An indicator stored as ``None`` (undefined) makes the score ``bad``, so that ranking never sees NaN.

    Example:
        >>> attrs = {"arch": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "ntk_cond": None,
        ...          "regions": 30.0, "kr_mse": None, "bad": True}
        >>> score_from_user_attrs(attrs).bad
        True
        >>> score_from_user_attrs({"arch": attrs["arch"]}) is None
        True
    """
    if any(key not in user_attrs for key in _SCORE_ATTRS):
        return None
    return TEGScore.from_dict({key: user_attrs[key] for key in (*INDICATOR_ATTRS, BAD_ATTR)})


def write_user_attrs(
    study: optuna.Study,
    trial: optuna.Trial | FrozenTrial,
    attrs: Mapping[str, Any],
    current: Mapping[str, Any] | None = None,
) -> None:
    """Write ``attrs`` to ``trial`` through ``study``'s storage (as a sampler or a pruner, which get
    no live trial), skipping keys ``current`` already holds with the same value (each write is a
    storage transaction)."""
    from teg_plugin.optuna._compat import storage_of, trial_id_of

    storage, trial_id = storage_of(study), trial_id_of(trial)
    current = current or {}
    for key, value in attrs.items():
        if key not in current or current[key] != value:
            storage.set_trial_user_attr(trial_id, key, value)


def read_user_attrs(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> dict[str, Any]:
    """``trial``'s user attributes as ``study``'s storage holds them now (a live trial's own copy may
    predate what the sampler wrote)."""
    from teg_plugin.optuna._compat import storage_of, trial_id_of

    return storage_of(study).get_trial_user_attrs(trial_id_of(trial))


def scored_trials(study: optuna.Study, *, exclude_number: int | None = None) -> list[tuple[FrozenTrial, TEGScore]]:
    """Every trial of ``study`` that has TEG user attributes, with its score, in trial-number order.

    Failed trials are left out (a trial retried after a crash keeps its attributes in its retry),
    and so is trial ``exclude_number``.
    """
    from optuna.trial import TrialState

    out = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.FAIL or trial.number == exclude_number:
            continue
        score = score_from_user_attrs(trial.user_attrs)
        if score is not None:
            out.append((trial, score))
    out.sort(key=lambda pair: pair[0].number)
    return out


def count_strictly_better(score: TEGScore, others: Sequence[TEGScore]) -> int:
    """How many of ``others`` have a strictly lower TEG rank-sum than ``score`` within ``[score, *others]``."""
    sums = rank_sums([score, *others])
    return int((sums[1:] < sums[0]).sum())


def normalized_rank_sum(score: TEGScore, others: Iterable[TEGScore]) -> float:
    """``score``'s rank-sum within ``[score, *others]`` divided by the number of good scores among them:
    in ``(0, 3]``, lower is better; ``inf`` for a bad score."""
    scores = [score, *others]
    n_good = sum(not s.bad for s in scores)
    value = float(rank_sums(scores)[0])
    return value / n_good if math.isfinite(value) else math.inf
