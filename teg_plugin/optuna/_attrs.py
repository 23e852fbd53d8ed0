"""The attributes a TEG study and its trials carry: their names, and every function that writes or
reads them. No other module spells an attribute name.

**Trial user attributes.** Every trial that the sampler, the pruner or the zero-cost objective touches
stores these (visible in optuna-dashboard and in ``study.trials_dataframe()``):

* ``arch`` (:data:`ARCH_ATTR`): the architecture's text form (:meth:`SearchSpace.format`);
* ``index`` (:data:`INDEX_ATTR`): its benchmark index (NB201), absent where the space has none;
* ``ntk_cond``, ``regions``, ``kr_mse`` (:data:`INDICATOR_ATTRS`): the three TEG indicators (``None``
  where undefined);
* ``bad`` (:data:`BAD_ATTR`): whether the architecture is flagged bad (it then ranks after every good one);
* ``proxy_<name>``: zero-cost proxy values, when asked for (:func:`proxy_user_attrs`) or named by
  the study's rank rule;
* ``complexity`` (:data:`COMPLEXITY_ATTR`): the parameter count of the network the architecture is
  trained as (:meth:`SearchSpace.complexity`), when the study's rank rule weighs it (``params``).

A trial **has TEG attributes** once it has ``arch``, the three indicators and ``bad``; rankings
(the pruner, the zero-cost objective's value, :func:`best_trial`, the figures) use every such trial
except failed ones (a trial retried after a crash keeps its attributes in the retry):
:func:`teg_trials` and :func:`scored_trials` list them. They rank by the study's rank rule
(:func:`study_rule`), whose extra terms they read from the trials' ``proxy_<name>`` and
``complexity`` attributes (:func:`rule_extra`).

**Trial system attribute.** :data:`WORKER_ATTR`: the process running the trial (``within_budget``).

**Study user attributes.** :data:`RANK_RULE_ATTR` (the rank rule the study's trials are ranked by;
absent: the paper's), :data:`FINAL_CHOICE_ATTR` and :data:`FINAL_SCORES_ATTR` (the final choice,
:mod:`teg_plugin.optuna._final`), :data:`SEARCH_SETTINGS_ATTR` (the settings of a ``teg-nas search``
study, checked on resume) and :func:`best_benchmark_attr` (benchmark accuracies of the best
architecture, written by ``teg-nas search`` for the report). Search code never reads the last ones.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from teg_plugin._proxy_table import keyed_proxy_values, proxy_key
from teg_plugin.scores import COMPLEXITY, INDICATORS, PAPER_RULE, RankRule, TEGScore, rank_sums

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from teg_plugin.scorer import TEGScorer
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
SCORE_ATTRS: tuple[str, ...] = (ARCH_ATTR, *INDICATOR_ATTRS, BAD_ATTR)
#: The architecture's complexity, the ``params`` term of a rank rule (written when the study's rule weighs it).
COMPLEXITY_ATTR = "complexity"

#: Trial system attribute: ``host:pid:start`` of the process running the trial, so that a worker
#: waiting for it can tell when that process is gone (on the same host), without a heartbeat's grace
#: period, and on a storage without heartbeat (a journal file), which never fails such a trial.
WORKER_ATTR = "teg:worker"

#: Study user attribute: the finished final choice.
FINAL_CHOICE_ATTR = "teg_final_choice"
#: Study user attribute: the final choice's scores measured so far.
FINAL_SCORES_ATTR = "teg_final_choice_scores"
#: Study user attribute: the settings a ``teg-nas search`` study was made with (checked on resume).
SEARCH_SETTINGS_ATTR = "teg_search_settings"
#: Study user attribute: the text form of the :class:`RankRule` the study ranks its trials by
#: (absent: the paper's, :data:`teg_plugin.scores.PAPER_RULE`).
RANK_RULE_ATTR = "teg_rank_rule"


def best_benchmark_attr(key: str) -> str:
    """The study user attribute under which a report stores benchmark value ``key`` of the best
    architecture (never read by search code).

    Example:
        >>> best_benchmark_attr("benchmark_cifar10_test")
        'best_benchmark_cifar10_test'
    """
    return f"best_{key}"


def describe_score_attrs() -> str:
    """The attributes a trial needs to count as scored, in words (for error messages).

    Example:
        >>> describe_score_attrs()
        "user attrs 'arch' and 'ntk_cond'/'regions'/'kr_mse'/'bad'"
    """
    rest = "/".join(f"'{key}'" for key in SCORE_ATTRS[1:])
    return f"user attrs '{SCORE_ATTRS[0]}' and {rest}"


# -- writing -------------------------------------------------------------------------------------


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
    return keyed_proxy_values(values)


def measured_user_attrs(
    scorer: TEGScorer,
    arch: Hashable,
    score: TEGScore,
    *,
    proxies: Sequence[str] = (),
    rule: RankRule = PAPER_RULE,
) -> dict[str, Any]:
    """Every user attribute of a trial of ``arch``: its TEG attributes (``score``), the proxies
    ``proxies`` and those ``rule`` names (``proxy_<name>``, computed by ``scorer``, cached), and its
    complexity (:data:`COMPLEXITY_ATTR`) when ``rule`` weighs it."""
    attrs = teg_user_attrs(scorer.space, arch, score)
    names = tuple(dict.fromkeys((*proxies, *rule.proxies)))
    if names:
        attrs.update(proxy_user_attrs(scorer.proxies([arch], names)[0]))
    if rule.complexity:
        attrs[COMPLEXITY_ATTR] = float(scorer.space.complexity(arch))
    return attrs


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


def claim_study_rule(study: optuna.Study, rule: RankRule, *, who: str) -> None:
    """Record that ``study`` ranks its trials by ``rule`` (:data:`RANK_RULE_ATTR`), or refuse.

    A study holds one rule: its trials' values, the pruner and :func:`best_trial` all rank by it.
    A study that records none ranks by the paper's rule; another rule is recorded only while the
    study has no scored trial yet (those were ranked by the paper's rule and lack the new terms).

    Raises:
        ValueError: ``study`` ranks by another rule (the message names both, and ``who`` asks).
    """
    current = study_rule(study)
    if current == rule:
        return
    if RANK_RULE_ATTR not in study.user_attrs and not teg_trials(study):
        study.set_user_attr(RANK_RULE_ATTR, str(rule))
        return
    named = f"{current} (the paper's)" if current == PAPER_RULE else str(current)
    raise ValueError(
        f"study {study.study_name!r} ranks its trials by the rank rule {named}, and {who} ranks by {rule}: "
        "a study holds one rule; use that one, or another study"
    )


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
    for key, value in _changed(attrs, current).items():
        storage.set_trial_user_attr(trial_id, key, value)


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Write ``attrs`` to the live ``trial`` (:meth:`~optuna.trial.Trial.set_user_attr`, which keeps
    the trial's own copy current), skipping keys it already holds with the same value."""
    for key, value in _changed(attrs, trial.user_attrs).items():
        trial.set_user_attr(key, value)


def write_worker(study: optuna.Study, trial: optuna.Trial, worker: str) -> None:
    """Record in ``trial`` (:data:`WORKER_ATTR`) the process ``worker`` that runs it."""
    from teg_plugin.optuna._compat import storage_of, trial_id_of

    storage_of(study).set_trial_system_attr(trial_id_of(trial), WORKER_ATTR, worker)


def _changed(attrs: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    current = current or {}
    return {key: value for key, value in attrs.items() if key not in current or current[key] != value}


# -- reading -------------------------------------------------------------------------------------


def read_user_attrs(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> dict[str, Any]:
    """``trial``'s user attributes as ``study``'s storage holds them now (a live trial's own copy may
    predate what the sampler wrote)."""
    from teg_plugin.optuna._compat import storage_of, trial_id_of

    return storage_of(study).get_trial_user_attrs(trial_id_of(trial))


def read_worker(trial: FrozenTrial) -> str | None:
    """The process recorded as running ``trial`` (:func:`write_worker`), ``None`` if none is."""
    worker = trial.system_attrs.get(WORKER_ATTR)
    return worker if isinstance(worker, str) else None


@dataclass(frozen=True)
class TEGAttrs:
    """The TEG user attributes of one trial as read back (:func:`read_teg_attrs`).

    Attributes:
        arch: the architecture's text form.
        index: its benchmark index, ``None`` where the space has none.
        ntk_cond, regions, kr_mse: the indicators, ``None`` where undefined (stored as ``None``, not
            a finite number, or not a number at all).
        bad: the architecture was flagged bad (an undefined indicator makes its :meth:`score` bad too).
    """

    arch: str
    index: int | None
    ntk_cond: float | None
    regions: float | None
    kr_mse: float | None
    bad: bool

    def score(self) -> TEGScore:
        """The :class:`TEGScore` these attributes hold (an undefined indicator reads as NaN: ``bad``)."""
        return TEGScore.from_dict({**{key: getattr(self, key) for key in INDICATOR_ATTRS}, BAD_ATTR: self.bad})


def read_teg_attrs(user_attrs: Mapping[str, Any]) -> TEGAttrs | None:
    """The TEG attributes in a trial's user attributes, or ``None`` unless it has ``arch``, the three
    indicators and ``bad``.

    Example:
        >>> attrs = {"arch": "a", "index": 7, "ntk_cond": 12.0, "regions": None, "kr_mse": 0.5, "bad": True}
        >>> read_teg_attrs(attrs)
        TEGAttrs(arch='a', index=7, ntk_cond=12.0, regions=None, kr_mse=0.5, bad=True)
        >>> read_teg_attrs({"arch": "a"}) is None
        True
    """
    if any(key not in user_attrs for key in SCORE_ATTRS):
        return None
    indicators = {key: _finite_or_none(user_attrs[key]) for key in INDICATOR_ATTRS}
    return TEGAttrs(
        arch=str(user_attrs[ARCH_ATTR]),
        index=_int_or_none(user_attrs.get(INDEX_ATTR)),
        bad=bool(user_attrs[BAD_ATTR]),
        **indicators,
    )


def study_rule(study: optuna.Study) -> RankRule:
    """The rank rule ``study`` ranks its trials by (:data:`RANK_RULE_ATTR`; the paper's when it
    records none).

    Raises:
        ValueError: the study records a rule that does not parse.
    """
    text = study.user_attrs.get(RANK_RULE_ATTR)
    if text is None:
        return PAPER_RULE
    try:
        return RankRule.parse(str(text))
    except ValueError as err:
        raise ValueError(f"study {study.study_name!r} records an unreadable rank rule {text!r}: {err}") from None


def rule_extra(user_attrs: Sequence[Mapping[str, Any]], rule: RankRule) -> list[dict[str, float]] | None:
    """The values of ``rule``'s extra terms (:attr:`RankRule.extra_terms`) stored in each trial's
    user attributes (``proxy_<name>``, :data:`COMPLEXITY_ATTR`): :func:`~teg_plugin.scores.rank_sums`'s
    ``extra``, ``None`` when the rule has none. A value stored as ``None`` (a flagged proxy), or
    not stored at all, is NaN: it ranks after every defined value of its term.

    Example:
        >>> rule_extra([{"proxy_nwot": 5.0, "complexity": 9.0}, {"proxy_nwot": None}], RankRule.parse("nwot,params"))
        [{'params': 9.0, 'nwot': 5.0}, {'params': nan, 'nwot': nan}]
    """
    terms = rule.extra_terms
    if not terms:
        return None
    keys = {term: COMPLEXITY_ATTR if term == COMPLEXITY else proxy_key(term) for term in terms}
    out = []
    for attrs in user_attrs:
        values = {term: _finite_or_none(attrs.get(key)) for term, key in keys.items()}
        out.append({term: math.nan if value is None else value for term, value in values.items()})
    return out


def stored_arch(user_attrs: Mapping[str, Any]) -> str | None:
    """The architecture text a trial's user attributes hold, ``None`` when they hold none (scored or not)."""
    arch = user_attrs.get(ARCH_ATTR)
    return None if arch is None else str(arch)


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
    teg = read_teg_attrs(user_attrs)
    return None if teg is None else teg.score()


def teg_trials(study: optuna.Study) -> list[tuple[FrozenTrial, TEGAttrs]]:
    """Every trial of ``study`` that has TEG user attributes, with them, in trial-number order.

    Failed trials are left out (a trial retried after a crash keeps its attributes in its retry).
    """
    from optuna.trial import TrialState

    out = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.FAIL:
            continue
        teg = read_teg_attrs(trial.user_attrs)
        if teg is not None:
            out.append((trial, teg))
    out.sort(key=lambda pair: pair[0].number)
    return out


def scored_trials(study: optuna.Study, *, exclude_number: int | None = None) -> list[tuple[FrozenTrial, TEGScore]]:
    """Every trial of ``study`` that has TEG user attributes (:func:`teg_trials`), with its score,
    in trial-number order; trial ``exclude_number`` is left out."""
    return [(trial, teg.score()) for trial, teg in teg_trials(study) if trial.number != exclude_number]


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _finite_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# -- ranking -------------------------------------------------------------------------------------


def count_strictly_better(
    score: TEGScore,
    others: Sequence[TEGScore],
    rule: RankRule = PAPER_RULE,
    extra: Sequence[Mapping[str, float]] | None = None,
) -> int:
    """How many of ``others`` have a strictly lower rank-sum under ``rule`` than ``score`` within
    ``[score, *others]`` (``extra``: :func:`~teg_plugin.scores.rank_sums`'s, one mapping per score
    of that list)."""
    sums = rank_sums([score, *others], rule, extra)
    return int((sums[1:] < sums[0]).sum())


def normalized_rank_sum(
    score: TEGScore,
    others: Sequence[TEGScore],
    rule: RankRule = PAPER_RULE,
    extra: Sequence[Mapping[str, float]] | None = None,
) -> float:
    """``score``'s rank-sum under ``rule`` within ``[score, *others]`` divided by the number of good
    scores among them (``extra`` as for :func:`count_strictly_better`): in ``(0, W]`` for a rule whose
    weights sum to ``W`` (3 for the paper's), lower is better; ``inf`` for a bad score."""
    scores = [score, *others]
    n_good = sum(not s.bad for s in scores)
    value = float(rank_sums(scores, rule, extra)[0])
    return value / n_good if math.isfinite(value) else math.inf
