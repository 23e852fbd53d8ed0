"""TEGSampler: search space from trial 0, determinism, resume, parallel workers, guided search."""

from __future__ import annotations

import math
import random
import warnings
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from teg_plugin.optuna import (
    TEG_ATTRS,
    TEGSampler,
    best_trial,
    score_from_user_attrs,
    search_space,
    suggest,
    zero_cost_objective,
)
from teg_plugin.scores import rank_sums
from teg_plugin.spaces import NB201Space
from teg_plugin.strategies import STRATEGY_NAMES


def _fake_objective(space: NB201Space, scorer: Any):
    def objective(trial: optuna.Trial) -> float:
        score = scorer.score(suggest(space, trial))
        return math.inf if score.bad else score.ntk_cond

    return objective


def _run(sampler: TEGSampler, objective, n_trials: int, storage=None, study_name=None) -> optuna.Study:
    study = optuna.create_study(sampler=sampler, storage=storage, study_name=study_name, load_if_exists=True)
    study.optimize(objective, n_trials=n_trials)
    return study


def test_search_space_is_known_from_trial_0_and_attrs_are_written(space, scorer) -> None:
    study = _run(TEGSampler(space, scorer, seed=0), zero_cost_objective(space, scorer), 1)
    first = study.trials[0]
    assert first.distributions == search_space(space)
    assert set(first.params) == set(space.choices())
    assert set(TEG_ATTRS) <= set(first.user_attrs)
    arch = space.from_params(first.params)
    assert first.user_attrs["arch"] == space.format(arch)
    assert first.user_attrs["index"] == space.index(arch)
    assert score_from_user_attrs(first.user_attrs) is not None
    assert not any(key.startswith("benchmark") for key in first.user_attrs)


def test_same_seed_same_sequence_other_seed_other_sequence(space, fake, evolution_options, trial_params) -> None:
    def run(seed: int) -> list[dict[str, str]]:
        sampler = TEGSampler(space, fake, seed=seed, strategy_options=evolution_options)
        return trial_params(_run(sampler, _fake_objective(space, fake), 10))

    first = run(0)
    assert run(0) == first
    assert run(1) != first


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_resumed_study_continues_like_one_uninterrupted_run(
    space, fake, strategy: str, evolution_options, trial_params
) -> None:
    options = evolution_options if strategy == "evolution" else {}
    objective = _fake_objective(space, fake)
    sampler = TEGSampler(space, fake, strategy=strategy, seed=3, strategy_options=options)
    whole = trial_params(_run(sampler, objective, 12))

    storage = optuna.storages.InMemoryStorage()  # the sqlite round trip is tested with the real scorer
    for _ in range(2):  # two sessions of 6 trials, each with a fresh sampler on the loaded study
        sampler = TEGSampler(space, fake, strategy=strategy, seed=3, strategy_options=options)
        resumed = _run(sampler, objective, 6, storage=storage, study_name="resume")
    assert trial_params(resumed) == whole
    assert len(whole) == 12


def test_resume_with_the_real_scorer(space, scorer, tmp_path, evolution_options, trial_params) -> None:
    objective = zero_cost_objective(space, scorer)
    make = lambda: TEGSampler(space, scorer, seed=0, strategy_options=evolution_options)  # noqa: E731
    whole = trial_params(_run(make(), objective, 8))
    storage = f"sqlite:///{tmp_path / 'resume.db'}"
    _run(make(), objective, 4, storage=storage, study_name="s")
    assert trial_params(_run(make(), objective, 4, storage=storage, study_name="s")) == whole


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_cached_strategy_proposes_what_a_rebuilt_one_would(
    space, fake, strategy: str, evolution_options, trial_params
) -> None:
    """Interleaved ask/tell (trials finishing out of order) with and without the reused snapshot."""
    options = evolution_options if strategy == "evolution" else {}

    def run(use_snapshot: bool) -> list[dict[str, str]]:
        sampler = TEGSampler(space, fake, strategy=strategy, seed=5, strategy_options=options)
        sampler._policy.use_snapshot = use_snapshot
        study = optuna.create_study(sampler=sampler)
        open_trials: list[optuna.Trial] = []
        rng = random.Random(0)
        for _ in range(14):
            trial = study.ask()
            suggest(space, trial)
            open_trials.append(trial)
            if len(open_trials) >= 3 or rng.random() < 0.4:
                done = open_trials.pop(rng.randrange(len(open_trials)))
                if rng.random() < 0.2:
                    study.tell(done, state=TrialState.PRUNED)
                else:
                    study.tell(done, 1.0)
        return trial_params(study)

    assert run(True) == run(False)


def test_unfinished_earlier_trials_get_different_proposals(space, fake) -> None:
    study = optuna.create_study(sampler=TEGSampler(space, fake, seed=0, strategy="random"))
    first, second = study.ask(), study.ask()
    # The later trial asks first: it still counts the earlier, not yet sampled one.
    arch_2 = suggest(space, second)
    arch_1 = suggest(space, first)
    assert arch_1 != arch_2


def test_a_failed_architecture_is_not_proposed_again_at_once(space, fake) -> None:
    def objective(trial: optuna.Trial) -> float:
        suggest(space, trial)
        if trial.number == 2:
            raise RuntimeError("out of memory")
        return 0.0

    study = optuna.create_study(sampler=TEGSampler(space, fake, seed=0))
    study.optimize(objective, n_trials=4, catch=(RuntimeError,))
    assert study.trials[2].state == TrialState.FAIL
    assert study.trials[3].params != study.trials[2].params


def test_two_threads_run_and_every_trial_has_attrs(space, scorer, evolution_options) -> None:
    sampler = TEGSampler(space, scorer, seed=0, strategy_options=evolution_options)
    study = optuna.create_study(sampler=sampler)
    study.optimize(zero_cost_objective(space, scorer), n_trials=6, n_jobs=2)
    assert sorted(t.number for t in study.trials) == list(range(6))
    for trial in study.trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        assert set(TEG_ATTRS) <= set(trial.user_attrs)


def test_evolution_through_the_sampler_is_not_worse_than_random(space, scorer, evolution_options, trial_params) -> None:
    budget = 14
    objective = zero_cost_objective(space, scorer)
    evolution = _run(TEGSampler(space, scorer, seed=0, strategy_options=evolution_options), objective, budget)
    baseline = _run(optuna.samplers.RandomSampler(seed=0), objective, budget)

    # Rank every architecture of both runs together.
    trials = [*evolution.trials, *baseline.trials]
    sums = rank_sums([score_from_user_attrs(t.user_attrs) for t in trials])
    evo_best = min(sums[:budget])
    random_sums = sorted(sums[budget:])
    assert evo_best <= random_sums[len(random_sums) // 2]  # at least as good as random's median
    winner = best_trial(evolution)
    assert winner.state == TrialState.COMPLETE
    # Evolution proposes mutations: some architecture differs from an earlier one on exactly one edge.
    params = trial_params(evolution)
    assert any(sum(a[k] != b[k] for k in a) == 1 for i, a in enumerate(params) for b in params[:i])


def test_guided_mode_proposes_new_archs_and_scores_k_per_trial(
    space, make_scorer, search_config, evolution_options
) -> None:
    scorer = make_scorer(space, config=search_config)  # measures afresh
    n_trials, k = 4, 3

    def train(trial: optuna.Trial) -> float:
        arch = suggest(space, trial)
        return float(space.index(arch) % 7)  # stands in for an accuracy the search must never see

    sampler = TEGSampler(space, scorer, seed=0, steps_per_trial=k, strategy_options=evolution_options)
    study = _run_direction(sampler, train, n_trials, "maximize")
    archs = [space.from_params(t.params) for t in study.trials]
    assert len({space.canonical(a) for a in archs}) == n_trials
    assert scorer.n_measured >= k * n_trials
    for trial in study.trials:
        assert set(TEG_ATTRS) <= set(trial.user_attrs)
    # Each proposal is the best of the strategy's steps so far that no trial has had.
    steps = sampler._policy.history[: k * n_trials]
    assert archs[0] == steps[min(range(k), key=lambda i: (rank_sums([s for _, s in steps[:k]])[i], i))][0]


def test_guided_mode_never_sees_the_objective_values(space, fake, trial_params) -> None:
    def run(value) -> list[dict[str, str]]:
        def objective(trial: optuna.Trial) -> float:
            return value(suggest(space, trial))

        return trial_params(_run(TEGSampler(space, fake, seed=2, steps_per_trial=3), objective, 6))

    assert run(lambda arch: 0.0) == run(lambda arch: float(space.index(arch)))


def test_other_parameters_fall_back_to_random_with_one_warning(space, fake) -> None:
    def objective(trial: optuna.Trial) -> float:
        suggest(space, trial)
        return trial.suggest_float("lr", 1e-4, 1e-1, log=True)

    with pytest.warns(UserWarning, match="'lr'") as record:
        study = _run(TEGSampler(space, fake, seed=0), objective, 3)
    assert sum("'lr'" in str(w.message) for w in record) == 1
    assert all(1e-4 <= t.params["lr"] <= 1e-1 for t in study.trials)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(TEGSampler(space, fake, seed=0, warn_independent_sampling=False), objective, 2)


def test_enqueued_architecture_is_kept_and_gets_attrs(space, fake) -> None:
    study = optuna.create_study(sampler=TEGSampler(space, fake, seed=0))
    arch = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    )
    study.enqueue_trial({"3<-2": "nor_conv_1x1"})  # one edge fixed: the rest comes from the strategy
    study.enqueue_trial(space.to_params(arch))
    study.optimize(_fake_objective(space, fake), n_trials=2)
    partial, full = study.trials
    assert partial.params["3<-2"] == "nor_conv_1x1"
    assert partial.user_attrs["arch"] == space.format(space.from_params(partial.params))
    assert full.params == space.to_params(arch)


def test_bad_arguments_are_clear(space, fake) -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        TEGSampler(space, fake, strategy="annealing")
    with pytest.raises(TypeError, match="strategy name must be a str"):
        TEGSampler(space, fake, strategy=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed must be an int, got 1.7"):
        TEGSampler(space, fake, seed=1.7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed must be an int from 0 to 4294967295, got -1"):
        TEGSampler(space, fake, seed=-1)  # Optuna's RandomSampler would fail inside NumPy
    TEGSampler(space, fake, strategy=" Random ")  # names are matched like make_strategy matches them
    with pytest.raises(ValueError, match="steps_per_trial must be >= 1, got 0"):
        TEGSampler(space, fake, steps_per_trial=0)
    with pytest.raises(TypeError, match="steps_per_trial must be an int, got 2.0"):
        TEGSampler(space, fake, steps_per_trial=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TEGSampler(space, fake, strategy_options={"no_such_option": 1})


def test_reseed_rng_keeps_the_architecture_sequence(space, fake, trial_params) -> None:
    sampler = TEGSampler(space, fake, seed=0)
    sampler.reseed_rng()
    reseeded = trial_params(_run(sampler, _fake_objective(space, fake), 5))
    assert reseeded == trial_params(_run(TEGSampler(space, fake, seed=0), _fake_objective(space, fake), 5))


def _run_direction(sampler, objective, n_trials: int, direction: str) -> optuna.Study:
    study = optuna.create_study(sampler=sampler, direction=direction)
    study.optimize(objective, n_trials=n_trials)
    return study
