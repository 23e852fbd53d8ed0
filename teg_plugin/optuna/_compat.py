"""Every use of Optuna internals in teg_plugin, behind one door: an Optuna upgrade touches this file.

Optuna has no public API for some of what the TEG sampler, pruner and workers need. Each function
here says what it relies on; nothing else in teg_plugin reads a private Optuna attribute, imports a
private Optuna module, or spells one of Optuna's own system attribute names.

Checked against Optuna 5.1.0 (installed, the test suite runs on it) and, by reading their source,
4.0.0 and 4.8.0 (``pyproject.toml`` asks for ``optuna>=4.0``). Where a name differs between these
versions, both are handled and the function says which is which.

What is relied on:

* :func:`storage_of`: ``Study._storage``, the study's storage (``optuna.load_study`` takes it back).
* :func:`trial_id_of`: ``Trial._trial_id`` / ``FrozenTrial._trial_id``, a trial's storage id (the
  storage's methods take it; the trial *number* is not it).
* :func:`open_trial`: ``optuna.trial.Trial(study, trial_id)``, a live trial for a stored one.
* :func:`keep_in_cached_trial`: a sampler's ``sample_relative`` gets the live trial's own cached
  ``FrozenTrial`` (``Trial._cached_frozen_trial``), whose ``user_attrs`` is its live dict.
* :func:`fixed_params`: ``Study.enqueue_trial`` stores the enqueued values in the trial's system
  attribute ``"fixed_params"``, which Optuna then uses instead of the sampler's values.
* :func:`retried_trial_number`: Optuna's retry callback stores the original trial's number in the
  retry's system attribute ``"failed_trial"`` (also what ``RetryFailedTrialCallback.retried_trial_number``
  reads).
* :func:`heartbeat_enabled`: ``optuna.storages._heartbeat.is_heartbeat_enabled``.
* :func:`stale_trial_callback`: the storage's ``get_heartbeat_stale_trial_callback`` (Optuna >= 4.9),
  before that ``get_failed_trial_callback`` (deprecated in 4.9).
* :func:`retry_stale_trials`: ``RDBStorage(heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(...))``
  (Optuna >= 4.9), before that ``failed_trial_callback=RetryFailedTrialCallback(...)``.
* :func:`journal_operation_name`: ``optuna.storages.journal._storage.JournalOperation``, the
  operation codes of journal records.
* :data:`OPTIMIZE_LOGGER`: the logger ``optuna.study._optimize`` (the module that logs failed trials).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

#: The logger Optuna reports failed trials on: two warnings each, the first with the traceback.
OPTIMIZE_LOGGER = "optuna.study._optimize"

#: Optuna's trial system attribute holding the values of an enqueued trial.
_FIXED_PARAMS = "fixed_params"
#: Optuna's trial system attribute naming the trial a retried trial retries.
_RETRIED_TRIAL = "failed_trial"


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage ``study`` reads and writes."""
    return study._storage


def trial_id_of(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage id of ``trial`` (a live or a frozen trial)."""
    return trial._trial_id


def open_trial(study: optuna.Study, trial: FrozenTrial) -> optuna.trial.Trial:
    """A live :class:`optuna.trial.Trial` of ``study`` for the stored ``trial`` (constructing it makes
    one ``before_trial`` call on ``study``'s sampler)."""
    import optuna

    return optuna.trial.Trial(study, trial_id_of(trial))


def keep_in_cached_trial(trial: FrozenTrial, user_attrs: Mapping[str, Any]) -> None:
    """Add ``user_attrs`` (already written to the storage) to the ``trial`` a sampler was given, which
    is the live trial's cached copy: the objective and ``Trial.should_prune`` then see them without a
    storage round trip."""
    trial.user_attrs.update(user_attrs)


def fixed_params(trial: FrozenTrial) -> dict[str, Any]:
    """The parameter values ``study.enqueue_trial`` fixed for ``trial`` (``{}`` for none)."""
    return trial.system_attrs.get(_FIXED_PARAMS) or {}


def retried_trial_number(trial: FrozenTrial) -> int | None:
    """The number of the trial that ``trial`` retries (Optuna's retry callback), ``None`` if it is no retry."""
    return trial.system_attrs.get(_RETRIED_TRIAL)


def heartbeat_enabled(storage: BaseStorage) -> bool:
    """Whether ``storage`` fails the trials of dead workers (Optuna's heartbeat)."""
    try:
        from optuna.storages._heartbeat import is_heartbeat_enabled
    except ImportError:  # pragma: no cover - an Optuna without it: assume the safe, bounded wait
        return False
    return bool(is_heartbeat_enabled(storage))


def stale_trial_callback(storage: BaseStorage) -> Callable[[optuna.Study, FrozenTrial], None] | None:
    """The callback ``storage`` runs on a trial its heartbeat found stale (a retry), if any."""
    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None) or storage.get_failed_trial_callback  # type: ignore[attr-defined]
    return getter()


def retry_stale_trials(max_retry: int | None) -> dict[str, object]:
    """The :class:`~optuna.storages.RDBStorage` keyword argument that re-queues a heartbeat-stale
    trial up to ``max_retry`` times (``None``: without limit)."""
    import warnings

    import optuna

    storages = optuna.storages
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 4.9
            return {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)}
        return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=max_retry)}


def journal_operation_name(op_code: int) -> str | None:
    """The name (lower case) of journal operation ``op_code``, ``None`` for an unknown code."""
    from optuna.storages.journal._storage import JournalOperation

    try:
        return JournalOperation(op_code).name.lower()
    except ValueError:
        return None
