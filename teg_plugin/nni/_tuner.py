"""An NNI (HPO / ``nnictl``) tuner that runs teg-plugin's search algorithms over NB201 edge choices.

Use it from an experiment config (``examples/nnictl/nb201_teg.yml``)::

    tuner:
      className: teg_plugin.nni.TEGTuner
      codeDirectory: .
      classArgs: {strategy: evolution, seed: 0, budget: 100}

The search space is one ``choice`` per edge of the space (``examples/nnictl/search_space.json``);
each trial reports a TEG final result (``examples/nnictl/trial.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Mapping
from typing import Any

import nni
from nni.tuner import Tuner

from teg_plugin.nni._metrics import score_from_metrics
from teg_plugin.scores import TEGScore
from teg_plugin.spaces import SearchSpace, get_space
from teg_plugin.strategies import Strategy as TEGAlgorithm
from teg_plugin.strategies import make_strategy

_logger = logging.getLogger(__name__)

#: The algorithms the tuner can run (pruning scores supernets, not trials).
TUNER_STRATEGY_NAMES: tuple[str, ...] = ("random", "evolution", "reinforce")


class TEGTuner(Tuner):
    """Proposes architectures with a teg-plugin algorithm and learns from the trials' T/E/G.

    * :meth:`update_search_space` checks that the search space is one ``choice`` per choice of
      ``space`` (same options, any order) and starts the algorithm (again, from scratch, if the
      space is updated).
    * :meth:`generate_parameters` asks the algorithm for an architecture and returns its flat edge
      dict; it raises ``nni.NoMoreTrialError`` once ``budget`` parameters have been generated or the
      algorithm is finished (NNI then reports ``NO_MORE_TRIAL``, then ``DONE`` once trials end).
    * :meth:`receive_trial_result` tells the algorithm the ``ntk_cond``, ``regions``, ``kr_mse`` and
      ``bad`` of the trial's final result (``default`` is not read). A result without them (e.g.
      a bare number) counts as ``bad``.
    * :meth:`trial_end` tells a failed trial that reported nothing as ``bad``.

    Args:
        strategy: ``"random"``, ``"evolution"`` or ``"reinforce"``.
        seed: seed of all the algorithm's randomness.
        budget: parameters to generate at most (``None``: only the experiment's ``maxTrialNumber``).
        space: the teg-plugin search space (name or object).
        **options: options of the algorithm (e.g. ``population_size: 32``), see :func:`make_strategy`.
    """

    def __init__(
        self,
        strategy: str = "evolution",
        seed: int = 0,
        budget: int | None = None,
        space: SearchSpace | str = "nas-bench-201",
        **options: Any,
    ) -> None:
        key = str(strategy).strip().lower()
        if key not in TUNER_STRATEGY_NAMES:
            raise ValueError(
                f"unknown TEG strategy {strategy!r} for the NNI tuner; choose from {', '.join(TUNER_STRATEGY_NAMES)}"
            )
        if budget is not None and int(budget) < 1:
            raise ValueError(f"budget must be at least 1 (or None), got {budget}")
        self.strategy_name = key
        self.seed = int(seed)
        self.budget = None if budget is None else int(budget)
        self.space = get_space(space) if isinstance(space, str) else space
        self.options = dict(options)
        # Build the algorithm once to check the options now: NNI's dispatcher logs an error raised
        # later (in update_search_space) but leaves the experiment RUNNING with no trial.
        make_strategy(key, self.space, seed=self.seed, **self.options)
        self.algorithm: TEGAlgorithm | None = None
        self._lock = threading.Lock()
        self._generated = 0
        #: parameter_id -> arch, for generated parameters with no result yet.
        self._pending: dict[int, Hashable] = {}
        #: Every told (parameter_id or None, arch, score), in tell order.
        self._results: list[tuple[int | None, Hashable, TEGScore]] = []

    # -- Tuner API -------------------------------------------------------------------------------

    def update_search_space(self, search_space: Mapping[str, Any]) -> None:
        """Check ``search_space`` (one ``choice`` per choice of the space) and (re)start the algorithm."""
        expected = {name: tuple(options) for name, options in self.space.choices().items()}
        problems = []
        for name, options in expected.items():
            entry = search_space.get(name)
            if not isinstance(entry, Mapping) or entry.get("_type") != "choice":
                problems.append(f"{name!r} must be a choice")
            elif sorted(map(str, entry.get("_value", []))) != sorted(options):
                problems.append(f"{name!r} must choose among {list(options)}, got {entry.get('_value')}")
        extra = sorted(set(search_space) - set(expected))
        if extra:
            problems.append(f"unknown parameters {extra}")
        if problems:
            raise ValueError(
                f"TEGTuner searches the {self.space.name} space: one choice per edge "
                f"(see examples/nnictl/search_space.json); {'; '.join(problems)}"
            )
        with self._lock:
            self.algorithm = make_strategy(self.strategy_name, self.space, seed=self.seed, **self.options)
            self._generated = 0
            self._pending.clear()
            self._results.clear()

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, str]:
        """The next architecture as ``{edge: op}``; ``nni.NoMoreTrialError`` when the budget is spent."""
        with self._lock:
            algorithm = self._require_algorithm()
            if self.budget is not None and self._generated >= self.budget:
                raise nni.NoMoreTrialError(f"TEGTuner: budget of {self.budget} trials reached")
            if algorithm.is_finished():
                raise nni.NoMoreTrialError("TEGTuner: the search algorithm is finished")
            arch = algorithm.ask()
            self._generated += 1
            self._pending[parameter_id] = arch
            return dict(self.space.to_params(arch))

    def receive_trial_result(self, parameter_id: int, parameters: Mapping[str, Any], value: Any, **kwargs: Any) -> None:
        """Tell the algorithm the T/E/G of the trial's final result ``value``."""
        with self._lock:
            algorithm = self._require_algorithm()
            self._pending.pop(parameter_id, None)
            arch = self.space.from_params({name: parameters[name] for name in self.space.choices()})
            try:
                score = score_from_metrics(value)
            except ValueError as exc:
                _logger.error("TEGTuner: %s; the trial counts as bad", exc)
                score = TEGScore.flagged(f"no TEG result: {value!r}")
            algorithm.tell(arch, score)
            self._results.append((parameter_id, arch, score))
            _logger.info(
                "TEGTuner: result %d (parameter %s) %s: ntk_cond=%s regions=%s kr_mse=%s bad=%s",
                len(self._results), parameter_id, self.space.format(arch),
                score.ntk_cond, score.regions, score.kr_mse, score.bad,
            )

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """A trial that ended without a result is told as ``bad`` (the algorithm learns it ranks last)."""
        with self._lock:
            arch = self._pending.pop(parameter_id, None)
            if arch is None or self.algorithm is None:
                return
            score = TEGScore.flagged("trial ended without a result" + ("" if success else " (failed)"))
            self.algorithm.tell(arch, score)
            self._results.append((parameter_id, arch, score))

    def import_data(self, data: list[Mapping[str, Any]]) -> None:
        """Tell the algorithm earlier results (``[{"parameter": {...}, "value": {...}}, ...]``), e.g. on resume."""
        with self._lock:
            algorithm = self._require_algorithm()
            for entry in data:
                params = entry.get("parameter") or {}
                try:
                    arch = self.space.from_params({name: params[name] for name in self.space.choices()})
                    score = score_from_metrics(entry.get("value"))
                except (KeyError, ValueError) as exc:
                    _logger.warning("TEGTuner: imported entry skipped (%s)", exc)
                    continue
                algorithm.tell(arch, score)
                self._results.append((None, arch, score))

    # -- results ---------------------------------------------------------------------------------

    @property
    def results(self) -> list[tuple[Hashable, TEGScore]]:
        """Every told ``(arch, score)``, in tell order."""
        with self._lock:
            return [(arch, score) for _, arch, score in self._results]

    def best(self) -> Hashable:
        """The told architecture with the lowest TEG rank-sum (``ValueError`` before the first result)."""
        return self._require_algorithm().best()

    def _require_algorithm(self) -> TEGAlgorithm:
        if self.algorithm is None:
            raise RuntimeError("TEGTuner: update_search_space must be called first (NNI does it at start)")
        return self.algorithm
