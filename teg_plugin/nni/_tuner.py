"""An NNI (HPO / ``nnictl``) tuner that runs teg-plugin's search algorithms over NB201 edge choices.

Use it from an experiment config (``examples/nnictl/nb201_teg.yml``)::

    tuner:
      className: teg_plugin.nni.TEGTuner
      codeDirectory: .
      classArgs: {strategy: evolution, seed: 0, budget: 100}

The search space is one ``choice`` per edge of the space (``examples/nnictl/search_space.json``);
each trial reports a TEG final result (``examples/nnictl/trial.py``), with ``proxy_<name>`` for the
zero-cost proxies a rank rule (``classArgs: {rule: nwot}``) names (``trial.py --proxies nwot``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import nni
from nni.tuner import Tuner

from teg_plugin._checks import check_int
from teg_plugin._proxy_table import proxy_key
from teg_plugin.nni.metrics import parse_metric, score_from_metrics
from teg_plugin.scores import RankRule, TEGScore, as_rank_rule
from teg_plugin.spaces import SearchSpace, get_space
from teg_plugin.strategies import Strategy as TEGAlgorithm
from teg_plugin.strategies import make_strategy
from teg_plugin.strategies._factory import strategy_key

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
      a bare number) counts as ``bad``. The architecture told is the one the tuner generated for
      ``parameter_id``; ``parameters`` are only cross-checked against it.
    * :meth:`trial_end` tells a failed trial that reported nothing as ``bad``.
    * With a ``rule`` (:class:`~teg_plugin.scores.RankRule`), the algorithm ranks by it (its
      tournaments, :meth:`best`). The tuner has no scorer: the values of the zero-cost proxies the
      rule names come from the trials' final results (``proxy_<name>``, as
      :func:`~teg_plugin.nni.metrics.proxy_metrics` writes them; ``examples/nnictl/trial.py
      --proxies``). A result without one counts as that proxy undefined (it ranks after every
      defined value), with a warning.

    Each generated parameter is told at most once from its result (a repeat is logged and ignored)
    and once by ``trial_end`` at most. NNI stops its dispatcher, and so the experiment, on any
    exception of these two callbacks, so odd input there is logged, never raised.

    Args:
        strategy: ``"random"``, ``"evolution"`` or ``"reinforce"``.
        seed: seed of all the algorithm's randomness.
        budget: parameters to generate at most (``None``: only the experiment's ``maxTrialNumber``).
        space: the teg-plugin search space (name or object).
        rule: how the algorithm ranks: a :class:`~teg_plugin.scores.RankRule` or its text (e.g.
            ``"nwot"`` or ``"ntk_cond,regions,kr_mse,synflow=0.5"``); ``None``: the paper's rank-sum.
        **options: options of the algorithm (e.g. ``population_size: 32``), see :func:`make_strategy`.

    Raises:
        TypeError: ``strategy`` is not a string, ``seed`` or ``budget`` is not an integer (``bool``
            and floats such as ``2.7`` are refused; NumPy integers are fine), ``space`` is neither a
            name nor a :class:`SearchSpace`, or an option the algorithm does not take.
        ValueError: unknown ``strategy`` or space name, ``budget`` below 1, a bad option value, or
            a ``rule`` that does not parse.
    """

    def __init__(
        self,
        strategy: str = "evolution",
        seed: int = 0,
        budget: int | None = None,
        space: SearchSpace | str = "nas-bench-201",
        rule: RankRule | str | None = None,
        **options: Any,
    ) -> None:
        key = strategy_key(strategy, TUNER_STRATEGY_NAMES, hint="the NNI tuner proposes single architectures")
        checked_seed = check_int("TEGTuner seed", seed)
        checked_budget = None if budget is None else check_int("TEGTuner budget", budget, minimum=1)
        if not isinstance(space, (str, SearchSpace)):
            raise TypeError(f"TEGTuner space must be a space name or a SearchSpace, got {space!r}")
        self.strategy_name = key
        self.seed = checked_seed
        self.budget = checked_budget
        self.space = get_space(space) if isinstance(space, str) else space
        #: How the algorithm ranks.
        self.rule = as_rank_rule(rule)
        if {"rule", "proxy_values"} & set(options):
            raise TypeError("TEGTuner: pass the rank rule as rule=..., not among the algorithm's options")
        self.options = dict(options)
        #: arch -> the rule's proxies, as its trial reported them.
        self._proxies: dict[Hashable, dict[str, float]] = {}
        self._warned_missing: set[str] = set()
        # Build the algorithm once to check the options now: NNI's dispatcher logs an error raised
        # later (in update_search_space) but leaves the experiment RUNNING with no trial.
        self._make_algorithm()
        self.algorithm: TEGAlgorithm | None = None
        self._lock = threading.Lock()
        self._generated = 0
        #: parameter_id -> arch, for every parameter generated since the search space was last set.
        self._archs: dict[int, Hashable] = {}
        #: parameter_id -> how it was told: "result" (its final result) or "ended" (bad, by
        #: trial_end before any result). A generated id missing here is pending.
        self._told: dict[int, Literal["result", "ended"]] = {}
        #: Every told (parameter_id or None, arch, score), in tell order.
        self._results: list[tuple[int | None, Hashable, TEGScore]] = []

    # -- Tuner API -------------------------------------------------------------------------------

    def update_search_space(self, search_space: Mapping[str, Any]) -> None:
        """Check ``search_space`` (one ``choice`` per choice of the space) and (re)start the algorithm.

        Raises:
            TypeError: ``search_space`` is not a dict (NNI's search space is a JSON object).
            ValueError: a choice is missing, is not a ``choice`` of the space's options, or is unknown.
            In both cases nothing changes (the running algorithm, if any, is kept).
        """
        if not isinstance(search_space, Mapping):
            raise TypeError(
                f"TEGTuner: the search space must be a dict of {{name: {{'_type': 'choice', '_value': [...]}}}}, "
                f"got {type(search_space).__name__} {search_space!r}"
            )
        expected = {name: tuple(options) for name, options in self.space.choices().items()}
        problems = []
        for name, options in expected.items():
            entry = search_space.get(name)
            if not isinstance(entry, Mapping) or entry.get("_type") != "choice":
                problems.append(f"{name!r} must be a choice")
            elif not isinstance(entry.get("_value"), (list, tuple)):
                problems.append(f"{name!r} must list its options in '_value', got {entry.get('_value')!r}")
            elif not _same_options(entry["_value"], options):
                problems.append(f"{name!r} must choose among {list(options)}, got {entry['_value']}")
        extra = sorted(set(search_space) - set(expected), key=repr)
        if extra:
            problems.append(f"unknown parameters {extra}")
        if problems:
            raise ValueError(
                f"TEGTuner searches the {self.space.name} space: one choice per edge "
                f"(see examples/nnictl/search_space.json); {'; '.join(problems)}"
            )
        with self._lock:
            self.algorithm = self._make_algorithm()
            self._proxies.clear()
            self._generated = 0
            self._archs.clear()
            self._told.clear()
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
            self._archs[parameter_id] = arch
            return dict(self.space.to_params(arch))

    def receive_trial_result(self, parameter_id: int, parameters: Mapping[str, Any], value: Any, **kwargs: Any) -> None:
        """Tell the algorithm the T/E/G of the trial's final result ``value``.

        The architecture told is the one generated for ``parameter_id``; ``parameters`` (what NNI
        stored for it, so normally the same) are only cross-checked, with a warning if they differ.
        ``value`` without T/E/G (not a TEG dict) is told as ``bad``. Logged, never raised (only
        ``RuntimeError`` before :meth:`update_search_space`):

        * a repeated result for the same ``parameter_id`` is ignored (the first one counts);
        * a result arriving after :meth:`trial_end` told the trial as bad (NNI may deliver a final
          metric after the trial's end) is told too, so that the real score is not lost;
        * a ``parameter_id`` the tuner did not generate since the search space was last set (e.g. a
          trial started before :meth:`update_search_space`) is told with the architecture of
          ``parameters``, or ignored if they do not make one (there is nothing to tell).
        """
        with self._lock:
            self._require_algorithm()  # before update_search_space: RuntimeError
            told = self._told.get(parameter_id)
            if told == "result":
                _logger.warning(
                    "TEGTuner: parameter %s already has a result; the repeated result %r is ignored",
                    parameter_id,
                    value,
                )
                return
            reported, problem = self._arch_from_params(parameters)
            arch = self._archs.get(parameter_id)
            if arch is None:
                if reported is None:
                    _logger.error(
                        "TEGTuner: result of parameter %s ignored: the tuner did not generate it and its parameters "
                        "are no %s architecture (%s)",
                        parameter_id,
                        self.space.name,
                        problem,
                    )
                    return
                _logger.warning(
                    "TEGTuner: parameter %s was not generated since the search space was last set; its result is "
                    "told for the architecture of its parameters",
                    parameter_id,
                )
                arch = reported
            elif reported != arch:
                _logger.warning(
                    "TEGTuner: the parameters of %s do not match the architecture generated for it (%s); the "
                    "result is told for the generated %s",
                    parameter_id,
                    problem or f"got {self.space.format(reported)}",
                    self.space.format(arch),
                )
            try:
                score = score_from_metrics(value)
            except ValueError as exc:
                _logger.error("TEGTuner: %s; the trial counts as bad", exc)
                score = TEGScore.flagged(f"no TEG result: {value!r}")
            if told == "ended":
                _logger.warning(
                    "TEGTuner: the result of parameter %s came after trial_end had told it as bad; it is told too",
                    parameter_id,
                )
            self._keep_proxies(arch, value)
            self._tell(parameter_id, arch, score)
            self._told[parameter_id] = "result"
            _logger.info(
                "TEGTuner: result %d (parameter %s) %s: ntk_cond=%s regions=%s kr_mse=%s bad=%s",
                len(self._results),
                parameter_id,
                self.space.format(arch),
                score.ntk_cond,
                score.regions,
                score.kr_mse,
                score.bad,
            )

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """A trial that ended without a result is told as ``bad`` (the algorithm learns it ranks last).

        Nothing is told for a trial that has a result; a repeated end, or an id the tuner did not
        generate since the search space was last set, is logged and ignored (never raised).
        """
        with self._lock:
            if self.algorithm is None:
                _logger.warning("TEGTuner: trial_end(%s) before update_search_space is ignored", parameter_id)
                return
            told = self._told.get(parameter_id)
            if told == "result":
                return
            if told == "ended":
                _logger.warning("TEGTuner: trial_end of parameter %s repeated; ignored", parameter_id)
                return
            arch = self._archs.get(parameter_id)
            if arch is None:
                _logger.warning(
                    "TEGTuner: trial_end of parameter %s, which was not generated since the search space was "
                    "last set; ignored",
                    parameter_id,
                )
                return
            score = TEGScore.flagged("trial ended without a result" + ("" if success else " (failed)"))
            self._tell(parameter_id, arch, score)
            self._told[parameter_id] = "ended"
            _logger.info("TEGTuner: parameter %s ended without a result; told as bad", parameter_id)

    def import_data(self, data: Sequence[Mapping[str, Any]]) -> None:
        """Tell the algorithm earlier results (``[{"parameter": {...}, "value": {...}}, ...]``), e.g. on resume.

        Raises:
            TypeError: ``data`` is not a list (nothing is told).

        A record that is not a dict with ``parameter`` and ``value``, whose parameter is no
        architecture of the space, or whose value is no TEG result, is skipped with a warning.
        """
        # NNI documents data as a list of dicts with 'parameter' and 'value'. Its records come from a
        # user's file (nnictl experiment import) or a resumed experiment, and the dispatcher stops the
        # experiment on any exception here, so one bad record is skipped (as NNI's own tuners skip
        # unusable records) rather than losing the others; a wrong container is a caller's bug.
        if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
            raise TypeError(
                "TEGTuner.import_data takes a list of {'parameter': {...}, 'value': ...} records, "
                f"got {type(data).__name__}"
            )
        with self._lock:
            self._require_algorithm()
            for index, entry in enumerate(data):
                if not isinstance(entry, Mapping) or "parameter" not in entry or "value" not in entry:
                    _logger.warning(
                        "TEGTuner: imported record %d skipped: not a dict with 'parameter' and 'value' (%r)",
                        index,
                        entry,
                    )
                    continue
                arch, problem = self._arch_from_params(entry["parameter"])
                if arch is None:
                    _logger.warning("TEGTuner: imported record %d skipped: %s", index, problem)
                    continue
                try:
                    score = score_from_metrics(entry["value"])
                except ValueError as exc:
                    _logger.warning("TEGTuner: imported record %d skipped: %s", index, exc)
                    continue
                self._keep_proxies(arch, entry["value"])
                self._tell(None, arch, score)

    # -- results ---------------------------------------------------------------------------------

    @property
    def results(self) -> list[tuple[Hashable, TEGScore]]:
        """Every told ``(arch, score)``, in tell order."""
        with self._lock:
            return [(arch, score) for _, arch, score in self._results]

    def best(self) -> Hashable:
        """The told architecture with the lowest rank-sum under :attr:`rule` (``ValueError`` before
        the first result)."""
        return self._require_algorithm().best()

    def _make_algorithm(self) -> TEGAlgorithm:
        return make_strategy(
            self.strategy_name,
            self.space,
            seed=self.seed,
            rule=self.rule,
            proxy_values=self._reported_proxies,
            **self.options,
        )

    def _keep_proxies(self, arch: Hashable, value: Any) -> None:
        """Keep the rule's proxies that the final result ``value`` reports for ``arch`` (NaN where
        it reports none, or ``None``: flagged), for the algorithm's ``proxy_values``."""
        if not self.rule.proxies:
            return
        metric = parse_metric(value)
        reported = metric if isinstance(metric, Mapping) else {}
        values: dict[str, float] = {}
        for name in self.rule.proxies:
            number = reported.get(proxy_key(name))
            if proxy_key(name) not in reported and name not in self._warned_missing:
                self._warned_missing.add(name)
                _logger.warning(
                    "TEGTuner: a trial result has no %s, which the rank rule %s names: report it from the trial "
                    "(examples/nnictl/trial.py --proxies %s); it counts as undefined",
                    proxy_key(name),
                    self.rule,
                    name,
                )
            values[name] = (
                float(number) if isinstance(number, (int, float)) and not isinstance(number, bool) else float("nan")
            )
        self._proxies[arch] = values

    def _reported_proxies(self, arch: Hashable) -> dict[str, float]:
        """The algorithm's ``proxy_values``: the proxies ``arch``'s result reported (NaN: none)."""
        return self._proxies.get(arch) or {name: float("nan") for name in self.rule.proxies}

    def _tell(self, parameter_id: int | None, arch: Hashable, score: TEGScore) -> None:
        """Tell the algorithm ``score`` for ``arch`` and record it (``parameter_id`` None: imported)."""
        self._require_algorithm().tell(arch, score)
        self._results.append((parameter_id, arch, score))

    def _require_algorithm(self) -> TEGAlgorithm:
        if self.algorithm is None:
            raise RuntimeError("TEGTuner: update_search_space must be called first (NNI does it at start)")
        return self.algorithm

    def _arch_from_params(self, params: Any) -> tuple[Hashable | None, str | None]:
        """``(arch, None)`` for flat choice ``params`` (other keys ignored), else ``(None, what is wrong)``."""
        if not isinstance(params, Mapping):
            return None, f"parameters must be a dict of {self.space.name} choices, got {params!r}"
        try:
            return self.space.from_params({name: params[name] for name in self.space.choices() if name in params}), None
        except (ValueError, TypeError) as exc:
            return None, str(exc)


def _same_options(given: Sequence[Any], options: Sequence[Any]) -> bool:
    """Whether ``given`` lists exactly ``options``, in any order.

    Options are compared by ``repr``: a user space's options may mix types that do not sort together
    (str, int, None), and ``1``, ``True`` and ``"1"`` are different options.
    """
    return sorted(map(repr, given)) == sorted(map(repr, options))
