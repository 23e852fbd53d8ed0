"""zero_cost_objective (single and multi-objective), best_trial, suggest with Optuna's own samplers,
and the guarantee that an Optuna search never reads benchmark accuracies."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from teg_plugin.optuna import (
    DIRECTIONS,
    METRIC_NAMES,
    TEG_ATTRS,
    TEGPruner,
    TEGSampler,
    best_trial,
    score_from_user_attrs,
    search_space,
    suggest,
    teg_user_attrs,
    zero_cost_objective,
)
from teg_plugin.scores import TEGScore, rank_sums

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.mark.parametrize(
    "sampler", [optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0, n_startup_trials=2)]
)
def test_suggest_works_with_optunas_samplers(space, sampler) -> None:
    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)  # the SearchSpace method is the same function
        assert arch == suggest(space, trial)
        return float(space.index(arch))

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=5)
    for trial in study.trials:
        assert trial.distributions == search_space(space)
        assert trial.value == space.index(space.from_params(trial.params))


def test_attrs_round_trip(space) -> None:
    arch = space.parse(ALL_NONE)
    attrs = teg_user_attrs(space, arch, TEGScore.flagged("singular"))
    assert attrs == {
        "arch": ALL_NONE,
        "index": space.index(arch),
        "ntk_cond": None,
        "regions": None,
        "kr_mse": None,
        "bad": True,
    }
    assert score_from_user_attrs(attrs).bad
    good = TEGScore(ntk_cond=3.0, regions=20.0, kr_mse=0.5)
    back = score_from_user_attrs(teg_user_attrs(space, arch, good))
    assert (back.ntk_cond, back.regions, back.kr_mse, back.bad) == (3.0, 20.0, 0.5, False)


def test_single_objective_value_is_the_normalised_rank_sum(space, scorer) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(zero_cost_objective(space, scorer), n_trials=6)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert complete[0].number == 0 and complete[0].value == pytest.approx(3.0)  # alone, it is best and worst
    for trial in complete:
        assert 0.0 < trial.value <= 3.0
        earlier = [t for t in study.trials if t.number <= trial.number]
        scores = [score_from_user_attrs(t.user_attrs) for t in earlier]
        n_good = sum(not s.bad for s in scores)
        assert trial.value == pytest.approx(rank_sums(scores)[-1] / n_good)
    # best_trial recomputes the ranks over all complete trials.
    scores = [score_from_user_attrs(t.user_attrs) for t in complete]
    assert best_trial(study).number == complete[int(rank_sums(scores).argmin())].number


def test_bad_architecture_is_pruned_with_its_attrs(space, scorer) -> None:
    assert scorer.score(space.parse(ALL_NONE)).bad
    for multi in (False, True):
        study = optuna.create_study(directions=list(DIRECTIONS) if multi else None)
        study.enqueue_trial(space.to_params(space.parse(ALL_NONE)))
        study.optimize(zero_cost_objective(space, scorer, multi_objective=multi), n_trials=1)
        (trial,) = study.trials
        assert trial.state == TrialState.PRUNED
        assert trial.user_attrs["bad"] is True and trial.user_attrs["arch"] == ALL_NONE
        assert trial.user_attrs["ntk_cond"] is None


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names
def test_multi_objective_pareto_front(space, scorer) -> None:
    study = optuna.create_study(directions=list(DIRECTIONS), sampler=TEGSampler(space, scorer, seed=0))
    study.set_metric_names(list(METRIC_NAMES))
    study.optimize(zero_cost_objective(space, scorer, multi_objective=True), n_trials=6)
    assert study.metric_names == ["ntk_cond", "regions", "kr_mse"]
    front = study.best_trials
    assert front
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    signs = [1.0, -1.0, 1.0]  # minimise, maximise, minimise

    def dominates(a, b) -> bool:
        x = [s * v for s, v in zip(signs, a.values)]
        y = [s * v for s, v in zip(signs, b.values)]
        return all(p <= q for p, q in zip(x, y)) and any(p < q for p, q in zip(x, y))

    for trial in front:
        assert not any(dominates(other, trial) for other in complete)
        assert trial.values == [trial.user_attrs[name] for name in METRIC_NAMES]
    assert best_trial(study) in complete


def test_best_trial_needs_scored_complete_trials() -> None:
    study = optuna.create_study()
    study.add_trial(create_trial(value=1.0))
    with pytest.raises(ValueError, match="TEG"):
        best_trial(study)


def test_best_trial_says_when_every_architecture_was_bad(space, scorer) -> None:
    study = optuna.create_study(study_name="all-bad")
    study.enqueue_trial(space.to_params(space.parse(ALL_NONE)))
    study.optimize(zero_cost_objective(space, scorer), n_trials=1)
    with pytest.raises(
        ValueError, match=r"every architecture scored in study 'all-bad' \(1 trial\(s\)\) was flagged bad"
    ):
        best_trial(study)


@pytest.mark.parametrize(
    ("directions", "multi"),
    [
        (["maximize"], False),
        (["minimize", "minimize", "minimize"], True),
        (list(DIRECTIONS), False),
        (["minimize"], True),
    ],
)
def test_objective_refuses_a_study_of_other_directions(space, scorer, directions, multi) -> None:
    study = optuna.create_study(directions=directions)
    with pytest.raises(ValueError, match="the zero-cost objective.* needs a study created with"):
        study.optimize(zero_cost_objective(space, scorer, multi_objective=multi), n_trials=1)
    assert "arch" not in study.trials[0].user_attrs  # refused before anything was suggested or scored


def test_best_trial_counts_each_architecture_once_as_the_dashboard_note_does() -> None:
    from teg_plugin.plots import best_record, rank_records, records_from_study

    teg = {"a": (1.0, 1.0, 4.0), "b": (5.0, 9.0, 6.0), "c": (6.0, 1.0, 8.0), "d": (8.0, 7.0, 6.0)}
    study = optuna.create_study()
    for arch in ["b", "b", "d", "c", "a", "b"]:  # b's repeats must not outweigh a (a tie once deduplicated)
        cond, regions, mse = teg[arch]
        study.add_trial(
            create_trial(
                value=0.0, user_attrs={"arch": arch, "ntk_cond": cond, "regions": regions, "kr_mse": mse, "bad": False}
            )
        )
    noted = best_record(rank_records(records_from_study(study)))
    assert best_trial(study).user_attrs["arch"] == noted.arch == "b" and best_trial(study).number == 0


def test_best_trial_picks_what_the_strategy_picks(space) -> None:
    # teg-nas search reports best_trial, bench search Strategy.best(): one definition for both.
    from teg_plugin.strategies import EvolutionStrategy

    a, b, c = space.arch_at(0), space.arch_at(1), space.arch_at(2)
    scores = {a: TEGScore(1, 1, 1), b: TEGScore(2, 3, 2), c: TEGScore(3, 2, 3)}
    study, strategy = optuna.create_study(), EvolutionStrategy(space, seed=0)
    for arch in (a, b, c, c):  # as a multiset, c's repeat would make b the winner
        study.add_trial(create_trial(value=0.0, user_attrs=teg_user_attrs(space, arch, scores[arch])))
        strategy.tell(arch, scores[arch])
    assert space.parse(best_trial(study).user_attrs["arch"]) == strategy.best() == a


def test_the_search_never_reads_benchmark_accuracies(space, scorer, monkeypatch) -> None:
    import teg_plugin.benchmarks.nb201_accuracy as accuracy

    def peek() -> None:
        raise AssertionError("the search read benchmark accuracies")

    monkeypatch.setattr(accuracy, "_load_arrays", peek)
    with pytest.raises(AssertionError):
        accuracy.NB201Accuracy.load()  # the guard works

    objective = zero_cost_objective(space, scorer)

    def guarded(trial: optuna.Trial) -> float:
        value = objective(trial)
        trial.report(value, step=0)
        if trial.should_prune():
            raise optuna.TrialPruned()
        return value

    for steps in (1, 2):
        study = optuna.create_study(
            sampler=TEGSampler(space, scorer, seed=0, steps_per_trial=steps),
            pruner=TEGPruner(scorer, n_warmup_trials=2),
        )
        study.optimize(guarded, n_trials=4)
        best_trial(study)
        for trial in study.trials:
            assert trial.state != TrialState.FAIL
            assert set(trial.user_attrs) <= set(TEG_ATTRS)
            assert not math.isnan(trial.value if trial.value is not None else 0.0)
