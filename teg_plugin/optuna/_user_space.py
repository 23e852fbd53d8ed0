"""TrialSpace: a user's ``build_model(trial) -> nn.Module`` as a TEG search space."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FixedTrial

from teg_plugin.spaces._choice import BuildSupernet, BuildThinSupernet, ChoiceArch, ChoiceSpace

if TYPE_CHECKING:
    import optuna
    from torch import nn

#: The most values one parameter may have (an int or stepped float range is expanded to its values).
MAX_PARAM_VALUES = 1000

#: A user's model builder: ordinary ``trial.suggest_*`` calls, then the model.
BuildModelFn = Callable[["optuna.trial.BaseTrial"], "nn.Module"]
#: A user's thin-network builder for E: the same suggestions, then a network taking ``width`` channels.
BuildThinFn = Callable[["optuna.trial.BaseTrial", int], "nn.Module"]

_FLOAT_TOLERANCE = 1e-8  # Optuna's own tolerance for a value on a stepped float grid


class ConditionalSpaceError(ValueError):
    """``build_model`` suggested a parameter that depends on another one's value (a conditional
    search space), which :class:`TrialSpace` does not support."""


class TrialSpace(ChoiceSpace):
    """A user's model builder ``build_model(trial) -> nn.Module`` as a TEG search space.

    ``build_model`` is an ordinary Optuna builder: it asks ``trial.suggest_categorical``,
    ``trial.suggest_int`` and ``trial.suggest_float`` for its choices and returns the model (logits
    ``(batch, classes)``). The space's parameters and their Optuna distributions are discovered by
    running it on recording trials; after that every TEG tool works on it:
    :class:`~teg_plugin.scorer.TEGScorer` scores its architectures, :class:`TEGSampler` proposes them
    in exactly the distributions ``build_model`` asks for (so a training objective can simply call
    ``build_model(trial)``), :func:`zero_cost_objective` and :class:`TEGPruner` rank them.

    **Discrete parameters only.** TEG strategies search a finite space: ``suggest_int`` ranges (with
    ``step``/``log``) are expanded to their values, ``suggest_float`` needs a ``step``, and no
    parameter may have more than :data:`MAX_PARAM_VALUES` values.

    **No conditional parameters.** Every call of ``build_model`` must suggest the same parameters with
    the same distributions (suggest a parameter even where an architecture ignores it).
    A parameter that appears only for some values of another, or whose range depends on one, raises
    :class:`ConditionalSpaceError`: at construction when the discovery runs meet it (``build_model``
    runs twice, with every parameter's first and with every parameter's last value), otherwise
    when the first architecture that shows it is built.

    **Building.** The model of an architecture is ``build_model(FixedTrial(params))``
    (:meth:`build_model`); other trial methods (``report``, ``should_prune``, ``set_user_attr``) are
    FixedTrial's no-ops. T and G are measured on a deep copy of that model, re-initialised with the
    protocol's name-seeded weights, so no module ``build_model`` returns is ever modified or hooked.

    **E.** Give ``thin(trial, width)``: the same suggestions, then a small network taking
    ``(batch, width, 3, 3)`` crops (e.g. the same blocks with ``width`` channels everywhere and no
    stem). Without it, E counts the activation patterns of the model itself over the T/G images,
    which saturates for wide models.

    Args:
        build_model: ``trial -> nn.Module``, suggesting every choice with ``trial.suggest_*``.
        name: identifies the space *and its builder* in score-cache keys: change it whenever
            ``build_model`` (or ``thin``) builds something different.
        thin: ``(trial, width) -> nn.Module``, the thin network for E (see above).
        generalization_parameter: which weights (by parameter name) enter G's Jacobian; default all.
        supernet, thin_supernet: the supernet builders that supernet pruning (``TEGSampler(strategy=
            "prune")``) needs, ``{parameter: kept values}`` (and the thin width) ``-> nn.Module``, as
            for :class:`~teg_plugin.spaces.ChoiceSpace`; without them the space cannot be pruned.

    Raises:
        ValueError: a float without ``step``, a range over :data:`MAX_PARAM_VALUES` values, a
            parameter suggested twice with different distributions, or no parameter at all.
        ConditionalSpaceError: the discovery runs suggest different parameters.
        TypeError: ``build_model`` did not return an ``nn.Module``.

    Example:
        >>> from torch import nn
        >>> def build_model(trial):
        ...     width = trial.suggest_int("width", 8, 32, step=8)
        ...     kernel = trial.suggest_categorical("kernel", [3, 5])
        ...     return nn.Sequential(nn.Conv2d(3, width, kernel, padding=kernel // 2), nn.ReLU(),
        ...                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))
        >>> space = TrialSpace(build_model, name="tiny-cnn-v1")
        >>> space.choices()
        {'width': (8, 16, 24, 32), 'kernel': (3, 5)}
        >>> space.distributions()["width"]
        IntDistribution(high=32, log=False, low=8, step=8)
        >>> arch = space.from_params({"width": 24, "kernel": 5})
        >>> space.format(arch), space.build_model(arch)[0].out_channels
        ('{"width": 24, "kernel": 5}', 24)
    """

    def __init__(
        self,
        build_model: BuildModelFn,
        *,
        name: str,
        thin: BuildThinFn | None = None,
        generalization_parameter: Callable[[str], bool] | None = None,
        supernet: BuildSupernet | None = None,
        thin_supernet: BuildThinSupernet | None = None,
    ) -> None:
        if not callable(build_model):
            raise TypeError("build_model must be callable: trial -> nn.Module")
        if thin is not None and not callable(thin):
            raise TypeError("thin must be callable: (trial, width) -> nn.Module, or None")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a TrialSpace needs a non-empty name (it identifies build_model in the score cache)")
        self._user_build = build_model
        self._user_thin = thin
        self._distributions, values = _discover(build_model, name)
        super().__init__(
            name,
            values,
            self._build_from_choices,
            thin=None if thin is None else self._thin_from_choices,
            generalization_parameter=generalization_parameter,
            supernet=supernet,
            thin_supernet=thin_supernet,
        )
        if any(len(options) > 1 for options in values.values()):
            # The second discovery run: every parameter at its last value, checked like any build.
            last = {key: options[-1] for key, options in values.items()}
            self._run(self._user_build, _BuildTrial(self, last, complete=True))

    def distributions(self) -> dict[str, BaseDistribution]:
        """Parameter name -> the Optuna distribution ``build_model`` suggests it with, in the
        order ``build_model`` suggests them (what :class:`TEGSampler` tells Optuna)."""
        return dict(self._distributions)

    def suggest(self, trial: optuna.Trial) -> ChoiceArch:
        """Suggest an architecture in ``trial`` with ``build_model``'s own distributions, without
        building the model (the scorer builds what it measures; a training objective calls
        ``build_model(trial)`` or :meth:`build_model`, which get the same values)."""
        params = {name: _suggest_one(trial, name, dist) for name, dist in self._distributions.items()}
        return self.from_params(params)

    def build_model(self, trial_or_arch: optuna.trial.BaseTrial | Mapping[str, Any]) -> nn.Module:
        """The user's model of an architecture or of a live trial, with the space's checks.

        * An architecture (or a params mapping): ``build_model(FixedTrial(params))``.
        * A trial (e.g. in a training objective): ``build_model(trial)``, then a check that it
          suggested exactly the space's parameters with the space's distributions (a
          :class:`ConditionalSpaceError` otherwise). Calling the builder directly works too; this
          only adds the check.
        """
        if isinstance(trial_or_arch, Mapping):
            arch = self.from_params(trial_or_arch)
            return self._run(self._user_build, _BuildTrial(self, dict(arch), complete=True))
        trial = trial_or_arch
        before = set(trial.params)
        model = self._run(self._user_build, trial)
        params, dists = trial.params, trial.distributions
        extra = [name for name in params if name not in before and name not in self._distributions]
        missing = [name for name in self._distributions if name not in params]
        if extra or missing:
            raise ConditionalSpaceError(
                self._conditional_message(
                    "build_model(trial) suggested "
                    + "; ".join(f"{label} {names}" for label, names in (("unknown", extra), ("not", missing)) if names),
                    None,
                )
            )
        for name, dist in self._distributions.items():
            if dists[name] != dist:
                raise ConditionalSpaceError(
                    self._conditional_message(
                        f"build_model(trial) suggested {name!r} with {dists[name]}, discovered as {dist}", None
                    )
                )
        return model

    def from_params(self, params: Mapping[str, Any]) -> ChoiceArch:
        # A stepped float from another sampler may be off the space's exact grid value by
        # round-off (Optuna accepts 1e-8 steps): snap it to the grid value.
        snapped = {name: self._snap(name, value) for name, value in params.items()}
        return super().from_params(snapped)

    # -- internals -------------------------------------------------------------------------------

    def _snap(self, name: str, value: Any) -> Any:
        dist = self._distributions.get(name)
        if not isinstance(dist, FloatDistribution) or dist.step is None:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return value
        k = (value - dist.low) / dist.step
        i = round(k)
        options = self._choices[name]
        if abs(k - i) < _FLOAT_TOLERANCE and 0 <= i < len(options):
            return options[i]
        return value

    def _build_from_choices(self, choices: dict[str, Any]) -> nn.Module:
        model = self._run(self._user_build, _BuildTrial(self, choices, complete=True))
        return _private_copy(model)

    def _thin_from_choices(self, choices: dict[str, Any], width: int) -> nn.Module:
        assert self._user_thin is not None
        thin = self._user_thin
        model = self._run(lambda trial: thin(trial, width), _BuildTrial(self, choices, complete=False), what="thin")
        return _private_copy(model)

    def _run(self, builder: Callable[[Any], Any], trial: Any, what: str = "build_model") -> nn.Module:
        from torch import nn

        model = builder(trial)
        if not isinstance(model, nn.Module):
            raise TypeError(f"{what} of TrialSpace {self.name!r} returned a {type(model).__name__}, not an nn.Module")
        if isinstance(trial, _BuildTrial):
            trial.check_complete()
        return model

    def _check_request(self, name: str, dist: BaseDistribution, params: Mapping[str, Any]) -> None:
        known = self._distributions.get(name)
        if known is None:
            raise ConditionalSpaceError(
                self._conditional_message(f"the builder suggested {name!r}, which the discovery run did not", params)
            )
        if dist != known:
            raise ConditionalSpaceError(
                self._conditional_message(f"the builder suggested {name!r} with {dist}, discovered as {known}", params)
            )

    def _conditional_message(self, problem: str, params: Mapping[str, Any] | None) -> str:
        where = "" if params is None else f" for {dict(params)}"
        return (
            f"TrialSpace {self.name!r}: {problem}{where}. A parameter that depends on another one's value "
            "(a conditional search space) is not supported: suggest every parameter on every call, with "
            "fixed ranges, and ignore it where an architecture does not use it"
        )


class _DiscoveryTrial(FixedTrial):
    """Records every suggestion of ``build_model`` and answers each with its first value."""

    def __init__(self, space_name: str) -> None:
        # FixedTrial answers from this very dict: each new parameter's first value goes in it.
        self._answers: dict[str, Any] = {}
        super().__init__(self._answers)
        self._space_name = space_name
        self.found: dict[str, BaseDistribution] = {}
        self.values: dict[str, tuple[Any, ...]] = {}

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        if step is None:
            raise ValueError(
                f"TrialSpace {self._space_name!r}: suggest_float({name!r}, {low!r}, {high!r}"
                f"{', log=True' if log else ''}) has no step. TEG strategies search discrete spaces: "
                f"give step= (e.g. suggest_float({name!r}, {low!r}, {high!r}, step=...)) or list the values "
                "with suggest_categorical"
            )
        self._record(name, FloatDistribution(low, high, log=log, step=step))
        return super().suggest_float(name, low, high, step=step, log=log)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        self._record(name, IntDistribution(low, high, log=log, step=step))
        return super().suggest_int(name, low, high, step=step, log=log)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self._record(name, CategoricalDistribution(choices))
        return super().suggest_categorical(name, choices)

    def _record(self, name: str, dist: BaseDistribution) -> None:
        if name in self.found:
            if dist != self.found[name]:
                raise ValueError(
                    f"TrialSpace {self._space_name!r}: build_model suggested {name!r} twice with different "
                    f"distributions ({self.found[name]} and {dist})"
                )
            return
        values = _values(self._space_name, name, dist)
        self.found[name] = dist
        self.values[name] = values
        self._answers[name] = values[0]


class _BuildTrial(FixedTrial):
    """A FixedTrial that raises :class:`ConditionalSpaceError` on a suggestion the space does not
    know, and (``complete``) when the builder left one of the space's parameters out."""

    def __init__(self, space: TrialSpace, params: Mapping[str, Any], *, complete: bool) -> None:
        self._fixed = dict(params)
        super().__init__(dict(self._fixed))
        self._space = space
        self._complete = complete
        self._asked: set[str] = set()

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        self._check(name, FloatDistribution(low, high, log=log, step=step))
        return super().suggest_float(name, low, high, step=step, log=log)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        self._check(name, IntDistribution(low, high, log=log, step=step))
        return super().suggest_int(name, low, high, step=step, log=log)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self._check(name, CategoricalDistribution(choices))
        return super().suggest_categorical(name, choices)

    def _check(self, name: str, dist: BaseDistribution) -> None:
        self._space._check_request(name, dist, self._fixed)
        self._asked.add(name)

    def check_complete(self) -> None:
        if not self._complete:
            return
        missing = [name for name in self._fixed if name not in self._asked]
        if missing:
            raise ConditionalSpaceError(
                self._space._conditional_message(f"the builder did not suggest {missing}", self._fixed)
            )


def _discover(build_model: BuildModelFn, name: str) -> tuple[dict[str, BaseDistribution], dict[str, tuple[Any, ...]]]:
    from torch import nn

    recorder = _DiscoveryTrial(name)
    model = build_model(recorder)
    if not isinstance(model, nn.Module):
        raise TypeError(f"build_model of TrialSpace {name!r} returned a {type(model).__name__}, not an nn.Module")
    if not recorder.found:
        raise ValueError(f"build_model of TrialSpace {name!r} suggested no parameter: there is nothing to search")
    return recorder.found, recorder.values


def _values(space_name: str, name: str, dist: BaseDistribution) -> tuple[Any, ...]:
    """Every value of ``dist``, in order (a range at most :data:`MAX_PARAM_VALUES` long)."""
    if isinstance(dist, CategoricalDistribution):
        return tuple(dist.choices)
    if isinstance(dist, IntDistribution):
        count = (dist.high - dist.low) // dist.step + 1
        call = f"suggest_int({name!r}, {dist.low}, {dist.high}, step={dist.step})"
    elif isinstance(dist, FloatDistribution) and dist.step is not None:
        count = round((dist.high - dist.low) / dist.step) + 1
        call = f"suggest_float({name!r}, {dist.low!r}, {dist.high!r}, step={dist.step!r})"
    else:  # pragma: no cover - the recorder refuses floats without a step first
        raise ValueError(f"TrialSpace {space_name!r}: parameter {name!r} has no finite set of values ({dist})")
    if count > MAX_PARAM_VALUES:
        raise ValueError(
            f"TrialSpace {space_name!r}: {call} has {count} values, more than the {MAX_PARAM_VALUES} a "
            "TrialSpace enumerates per parameter: use a larger step, or list the values worth trying with "
            "suggest_categorical"
        )
    if isinstance(dist, IntDistribution):
        return tuple(range(dist.low, dist.high + 1, dist.step))
    assert dist.step is not None
    # Decimal arithmetic gives the grid's shortest decimals (0.3, not 0.30000000000000004).
    low, step = Decimal(str(dist.low)), Decimal(str(dist.step))
    return tuple(min(float(low + i * step), dist.high) for i in range(count))


def _suggest_one(trial: optuna.trial.BaseTrial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"unsupported distribution for {name!r}: {dist}")  # pragma: no cover


def _private_copy(model: nn.Module) -> nn.Module:
    """A deep copy for the scorer to re-initialise and hook, so no module the builder returned (and
    may hold on to) is touched; a module that cannot be copied is used as it is."""
    try:
        return copy.deepcopy(model)
    except Exception:  # noqa: BLE001 - e.g. a module holding a lock: it was built for this measurement
        return model
