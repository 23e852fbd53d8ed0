"""TEG-NAS for Optuna: search spaces as categorical parameters, a user's own ``build_model(trial)``
as a space (:class:`TrialSpace`), a TEG-guided sampler, a pre-training pruner, a zero-cost objective
and crash-tolerant storages.

Example:
    >>> import optuna
    >>> from teg_plugin.config import TEGConfig
    >>> from teg_plugin.scorer import TEGScorer
    >>> from teg_plugin.optuna import TEGSampler, best_trial, zero_cost_objective
    >>> scorer = TEGScorer("nas-bench-201", data="synthetic", device="cpu",
    ...                    config=TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2))
    >>> study = optuna.create_study(sampler=TEGSampler(scorer.space, scorer, seed=0))
    >>> study.optimize(zero_cost_objective(scorer.space, scorer), n_trials=3)
    >>> best_trial(study).user_attrs["arch"].startswith("|")
    True
"""

from __future__ import annotations

try:
    import optuna as _optuna  # noqa: F401
except ImportError as exc:  # pragma: no cover - optuna is a dependency; this guards broken installs
    raise ImportError("teg_plugin.optuna needs Optuna: pip install 'optuna>=4.0' (or reinstall teg-plugin)") from exc

from teg_plugin._database import JOURNAL_PREFIX
from teg_plugin.optuna._attrs import (
    ARCH_ATTR,
    BAD_ATTR,
    INDEX_ATTR,
    INDICATOR_ATTRS,
    RANK_RULE_ATTR,
    TEG_ATTRS,
    score_from_user_attrs,
    study_rule,
    teg_user_attrs,
)
from teg_plugin.optuna._budget import BudgetReached, within_budget
from teg_plugin.optuna._final import FINAL_CHOICE_ATTR, FINAL_SCORES_ATTR, current_final_choice, run_final_choice
from teg_plugin.optuna._objective import DIRECTIONS, METRIC_NAMES, best_trial, zero_cost_objective
from teg_plugin.optuna._pruner import TEGPruner, should_prune_zero_cost
from teg_plugin.optuna._sampler import TEGSampler
from teg_plugin.optuna._storage import DEFAULT_STORAGE_URL, create_storage
from teg_plugin.optuna._suggest import search_space, suggest
from teg_plugin.optuna._user_space import MAX_PARAM_VALUES, ConditionalSpaceError, TrialSpace

__all__ = [
    "ARCH_ATTR",
    "BAD_ATTR",
    "BudgetReached",
    "ConditionalSpaceError",
    "DEFAULT_STORAGE_URL",
    "DIRECTIONS",
    "FINAL_CHOICE_ATTR",
    "FINAL_SCORES_ATTR",
    "INDEX_ATTR",
    "INDICATOR_ATTRS",
    "JOURNAL_PREFIX",
    "MAX_PARAM_VALUES",
    "METRIC_NAMES",
    "RANK_RULE_ATTR",
    "TEG_ATTRS",
    "TEGPruner",
    "TEGSampler",
    "TrialSpace",
    "best_trial",
    "create_storage",
    "current_final_choice",
    "score_from_user_attrs",
    "run_final_choice",
    "search_space",
    "should_prune_zero_cost",
    "study_rule",
    "suggest",
    "teg_user_attrs",
    "within_budget",
    "zero_cost_objective",
]
