"""TEGPruner and should_prune_zero_cost: prune the worst TEG ranks before training, never during warm-up."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from teg_plugin.optuna import TEG_ATTRS, TEGPruner, TEGSampler, should_prune_zero_cost, suggest
from teg_plugin.optuna._attrs import read_user_attrs


def attrs(quality: float, *, bad: bool = False) -> dict[str, object]:
    """TEG attributes that get better on all three indicators as ``quality`` grows."""
    arch = f"arch-{quality}"  # the pruner never parses it
    if bad:
        return {"arch": arch, "ntk_cond": None, "regions": 3.0, "kr_mse": None, "bad": True}
    return {
        "arch": arch,
        "ntk_cond": 100.0 - quality,
        "regions": 10.0 + quality,
        "kr_mse": 1.0 / (1.0 + quality),
        "bad": False,
    }


def study_with(qualities: list[float], **pruner_options: object) -> optuna.Study:
    study = optuna.create_study(direction="maximize", pruner=TEGPruner(**pruner_options))
    for q in qualities:
        study.add_trial(create_trial(value=0.0, user_attrs=attrs(q)))
    return study


def check(study: optuna.Study, user_attrs: dict[str, object] | None) -> bool:
    trial = study.ask()
    for key, value in (user_attrs or {}).items():
        trial.set_user_attr(key, value)
    trial.report(0.0, step=0)
    decision = trial.should_prune()
    study.tell(trial, state=TrialState.PRUNED) if decision else study.tell(trial, 0.0)
    return decision


def test_prunes_the_worst_and_keeps_the_best() -> None:
    others = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert check(study_with(others), attrs(0.0))  # worse than all six
    assert not check(study_with(others), attrs(10.0))  # better than all six
    # 0.5 keeps the better half: 3 of 6 strictly better is not more than half, 4 of 6 is.
    assert not check(study_with(others), attrs(3.5))
    assert check(study_with(others), attrs(2.5))


def test_quantile_sets_the_share_kept() -> None:
    others = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert check(study_with(others, quantile=0.2), attrs(4.5))  # 2 of 6 better > 0.2 * 6
    assert not check(study_with(others, quantile=1.0), attrs(0.0))  # 1.0 prunes only bad ones
    assert check(study_with(others, quantile=1.0), attrs(0.0, bad=True))


def test_nothing_is_pruned_during_warm_up() -> None:
    four = [1.0, 2.0, 3.0, 4.0]
    assert not check(study_with(four, n_warmup_trials=5), attrs(0.0))  # 4 others: warming up
    assert not check(study_with(four, n_warmup_trials=5), attrs(0.0, bad=True))
    five = [*four, 5.0]
    assert check(study_with(five, n_warmup_trials=5), attrs(0.0))
    assert check(study_with(five, n_warmup_trials=5), attrs(0.0, bad=True))


def test_failed_trials_and_trials_without_attrs_do_not_count() -> None:
    study = study_with([1.0, 2.0])
    for q in (3.0, 4.0, 5.0):
        study.add_trial(create_trial(state=TrialState.FAIL, user_attrs=attrs(q)))
    study.add_trial(create_trial(value=0.0))  # no TEG attributes
    assert not check(study, attrs(0.0))  # only 2 others count: still warming up


def test_without_attrs_and_without_scorer_never_prunes() -> None:
    study = study_with([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert not check(study, None)


def test_scorer_fills_missing_attrs(space, scorer) -> None:
    study = study_with([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], scorer=scorer)
    trial = study.ask()
    arch = suggest(space, trial)
    trial.report(0.0, step=0)
    trial.should_prune()
    stored = read_user_attrs(study, trial)  # as stored, not the live trial's copy
    assert set(TEG_ATTRS) <= set(stored)
    assert stored["arch"] == space.format(arch)


def test_later_checks_go_to_the_training_pruner() -> None:
    class Always(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return True

    study = study_with([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], training_pruner=Always())
    trial = study.ask()
    for key, value in attrs(10.0).items():
        trial.set_user_attr(key, value)
    trial.report(0.0, step=0)
    assert not trial.should_prune()  # the TEG check: best architecture
    trial.report(0.5, step=1)
    assert trial.should_prune()  # training: the wrapped pruner decides


def test_multi_objective_helper_on_a_live_trial() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"])
    for q in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]:
        study.add_trial(create_trial(values=[0.0, 0.0], user_attrs=attrs(q)))
    worst, best = study.ask(), study.ask()
    for trial, q in ((worst, 0.0), (best, 10.0)):
        for key, value in attrs(q).items():
            trial.set_user_attr(key, value)
    assert should_prune_zero_cost(worst)
    assert not should_prune_zero_cost(best)
    assert not should_prune_zero_cost(worst, n_warmup_trials=10)
    with pytest.raises(ValueError, match="quantile"):
        should_prune_zero_cost(worst, quantile=1.5)


def test_sampler_and_pruner_together(space, scorer) -> None:
    pruned_before_training: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        suggest(space, trial)
        trial.report(0.0, step=0)
        if trial.should_prune():
            pruned_before_training.append(trial.number)
            raise optuna.TrialPruned()
        return 1.0

    sampler = TEGSampler(space, scorer, seed=0, strategy="random")
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=TEGPruner(n_warmup_trials=3))
    study.optimize(objective, n_trials=10)
    assert all(t.number >= 3 for t in study.trials if t.state == TrialState.PRUNED)
    assert pruned_before_training, "some of 7 random architectures after warm-up rank in the worse half"
    assert all(set(TEG_ATTRS) <= set(t.user_attrs) for t in study.trials)


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="quantile"):
        TEGPruner(quantile=-0.1)
    with pytest.raises(ValueError, match="n_warmup_trials must be >= 0, got -1"):
        TEGPruner(n_warmup_trials=-1)
    with pytest.raises(TypeError, match="n_warmup_trials must be an int, got '3'"):
        TEGPruner(n_warmup_trials="3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="training_pruner must be an Optuna pruner"):
        TEGPruner(training_pruner="median")  # type: ignore[arg-type]
