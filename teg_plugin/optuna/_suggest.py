"""A search space as Optuna categorical parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from optuna.distributions import BaseDistribution, CategoricalDistribution

from teg_plugin.optuna._user_space import TrialSpace

if TYPE_CHECKING:
    from collections.abc import Hashable

    import optuna

    from teg_plugin.spaces._base import SearchSpace

ArchT = TypeVar("ArchT", bound="Hashable")


def search_space(space: SearchSpace) -> dict[str, BaseDistribution]:
    """The Optuna distributions of ``space``: one categorical per choice, options in the space's order;
    for a :class:`TrialSpace`, the distributions its ``build_model`` suggests (int, float or
    categorical, :meth:`TrialSpace.distributions`).

    Example:
        >>> from teg_plugin.spaces import NB201Space
        >>> dists = search_space(NB201Space())
        >>> list(dists)
        ['1<-0', '2<-0', '2<-1', '3<-0', '3<-1', '3<-2']
        >>> dists["1<-0"].choices[:2]
        ('none', 'skip_connect')
    """
    if isinstance(space, TrialSpace):
        return space.distributions()
    return {name: CategoricalDistribution(list(options)) for name, options in space.choices().items()}


def suggest(space: SearchSpace[ArchT], trial: optuna.Trial) -> ArchT:
    """Suggest an architecture of ``space`` in ``trial``.

    Calls ``trial.suggest_categorical(name, options)`` once per choice of :meth:`SearchSpace.choices`,
    so any Optuna sampler can search the space (TPE, random, NSGA-II, :class:`TEGSampler`) and
    optuna-dashboard shows every choice: this is :meth:`SearchSpace.suggest`, which the space does
    itself. A :class:`TrialSpace` suggests each parameter with the distribution its ``build_model``
    uses (:meth:`TrialSpace.suggest`; the model is not built).

    Args:
        space: the search space.
        trial: the live trial.

    Returns:
        The architecture (``space.from_params`` of the suggested values).

    Example:
        >>> import optuna
        >>> from teg_plugin.spaces import NB201Space
        >>> space = NB201Space()
        >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        >>> study.optimize(lambda trial: float(space.index(suggest(space, trial))), n_trials=3)
        >>> len(study.trials[0].params)
        6
    """
    return space.suggest(trial)
