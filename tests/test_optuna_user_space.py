"""TrialSpace: a user's ``build_model(trial)`` searched by TEGSampler, the zero-cost objective and TEGPruner."""

from __future__ import annotations

import json
import warnings

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FixedTrial, TrialState
from torch import nn

from teg_plugin.optuna import (
    DIRECTIONS,
    MAX_PARAM_VALUES,
    TEG_ATTRS,
    ConditionalSpaceError,
    TEGPruner,
    TEGSampler,
    TrialSpace,
    best_trial,
    search_space,
    suggest,
    zero_cost_objective,
)


def _choices(trial: optuna.trial.BaseTrial) -> dict[str, object]:
    """Every kind of discrete suggestion the space supports."""
    return {
        "width": trial.suggest_int("width", 4, 12, step=4),
        "kernel": trial.suggest_categorical("kernel", [1, 3]),
        "depth": trial.suggest_int("depth", 1, 2),
        "scale": trial.suggest_float("scale", 0.5, 1.0, step=0.25),
        "norm": trial.suggest_categorical("norm", [True, False]),
    }


def _net(c: dict[str, object], in_channels: int, width: int) -> nn.Module:
    kernel = int(c["kernel"])  # type: ignore[call-overload]
    layers: list[nn.Module] = []
    for i in range(int(c["depth"])):  # type: ignore[call-overload]
        layers += [nn.Conv2d(in_channels if i == 0 else width, width, kernel, padding=kernel // 2)]
        layers += [nn.BatchNorm2d(width) if c["norm"] else nn.Identity(), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


#: Every module ``build_model`` returned, with its weights as returned (for the never-modified test).
BUILT: list[tuple[nn.Module, dict[str, torch.Tensor]]] = []


def build_model(trial: optuna.trial.BaseTrial) -> nn.Module:
    c = _choices(trial)
    trial.set_user_attr("builder", "build_model")  # harmless on the recording and building trials
    model = _net(c, 3, max(1, round(int(c["width"]) * float(c["scale"]))))  # type: ignore[call-overload, arg-type]
    BUILT.append((model, {k: v.clone() for k, v in model.state_dict().items()}))
    return model


def thin_model(trial: optuna.trial.BaseTrial, width: int) -> nn.Module:
    return _net(_choices(trial), width, 2)


@pytest.fixture(scope="module")
def space() -> TrialSpace:  # overrides the NB201 fixture of conftest (its scorer fixture follows)
    return TrialSpace(build_model, name="test-user-cnn-v1", thin=thin_model)


# -- discovery ---------------------------------------------------------------------------------------


def test_discovers_every_distribution_type(space: TrialSpace) -> None:
    assert space.choices() == {
        "width": (4, 8, 12),
        "kernel": (1, 3),
        "depth": (1, 2),
        "scale": (0.5, 0.75, 1.0),
        "norm": (True, False),
    }
    assert space.distributions() == {
        "width": IntDistribution(4, 12, step=4),
        "kernel": CategoricalDistribution([1, 3]),
        "depth": IntDistribution(1, 2),
        "scale": FloatDistribution(0.5, 1.0, step=0.25),
        "norm": CategoricalDistribution([True, False]),
    }
    assert search_space(space) == space.distributions()

    def more(trial: optuna.trial.BaseTrial) -> nn.Module:
        trial.suggest_int("log_int", 1, 8, log=True)
        with pytest.warns(UserWarning, match="divisible"):  # high is adjusted down to 0.3, as Optuna does
            trial.suggest_float("decimal", 0.1, 0.35, step=0.1)
        trial.suggest_categorical("act", ["relu", None])
        trial.suggest_categorical("act", ["relu", None])  # the same suggestion twice is one parameter
        trial.set_user_attr("note", "ignored")
        return nn.Linear(2, 2)

    other = TrialSpace(more, name="more")
    assert other.choices() == {"log_int": tuple(range(1, 9)), "decimal": (0.1, 0.2, 0.3), "act": ("relu", None)}
    assert other.distributions()["log_int"] == IntDistribution(1, 8, log=True)


def test_values_are_native_and_round_trip(space: TrialSpace) -> None:
    arch = space.from_params({"width": 8, "kernel": 3, "depth": 2, "scale": 0.75, "norm": False})
    assert json.loads(space.format(arch)) == {"width": 8, "kernel": 3, "depth": 2, "scale": 0.75, "norm": False}
    assert space.parse(space.format(arch)) == arch
    # A stepped float off the grid by round-off (as other samplers compute it) snaps to the grid value.
    assert space.from_params({**arch, "scale": 0.5 + 0.25 * 1.0000000000001})["scale"] == 0.75
    with pytest.raises(ValueError, match="not an option"):
        space.from_params({**arch, "scale": 0.6})
    model = space.build_model(arch)
    assert isinstance(model[0], nn.Conv2d) and model[0].out_channels == 6 and model[0].kernel_size == (3, 3)


def test_float_without_step_is_a_clear_error() -> None:
    def builder(trial: optuna.trial.BaseTrial) -> nn.Module:
        trial.suggest_float("dropout", 0.0, 0.5)
        return nn.Linear(2, 2)

    with pytest.raises(ValueError, match=r"discrete.*step=.*suggest_categorical"):
        TrialSpace(builder, name="float")


def test_huge_int_range_is_a_clear_error() -> None:
    def builder(trial: optuna.trial.BaseTrial) -> nn.Module:
        trial.suggest_int("units", 1, 100_000)
        return nn.Linear(2, 2)

    with pytest.raises(ValueError, match=rf"100000 values.*{MAX_PARAM_VALUES}.*step"):
        TrialSpace(builder, name="huge")


def test_builder_must_return_a_module_and_suggest_something() -> None:
    with pytest.raises(TypeError, match="returned a dict, not an nn.Module"):
        TrialSpace(lambda trial: {"width": trial.suggest_int("width", 1, 3)}, name="not-a-module")
    with pytest.raises(ValueError, match="suggested no parameter"):
        TrialSpace(lambda trial: nn.Linear(2, 2), name="empty")
    with pytest.raises(ValueError, match="twice with different distributions"):
        TrialSpace(lambda trial: nn.Linear(trial.suggest_int("a", 1, 2), trial.suggest_int("a", 1, 3)), name="twice")
    with pytest.raises(ValueError, match="non-empty name"):
        TrialSpace(build_model, name=" ")


def test_conditional_parameters_are_refused() -> None:
    def extra_on_last(trial: optuna.trial.BaseTrial) -> nn.Module:
        if trial.suggest_categorical("se", [False, True]):
            trial.suggest_int("ratio", 2, 4)
        return nn.Linear(2, 2)

    def range_depends(trial: optuna.trial.BaseTrial) -> nn.Module:
        depth = trial.suggest_int("depth", 1, 3)
        trial.suggest_int("width", 4, 4 * depth)
        return nn.Linear(2, 2)

    def extra_in_middle(trial: optuna.trial.BaseTrial) -> nn.Module:
        if trial.suggest_int("depth", 1, 3) == 2:
            trial.suggest_categorical("extra", ["a", "b"])
        return nn.Linear(2, 2)

    def missing_in_middle(trial: optuna.trial.BaseTrial) -> nn.Module:
        if trial.suggest_int("depth", 1, 3) != 2:
            trial.suggest_categorical("extra", ["a", "b"])
        return nn.Linear(2, 2)

    # Met by the discovery runs (first and last values): refused at construction.
    with pytest.raises(ConditionalSpaceError, match=r"'ratio'.*conditional search space"):
        TrialSpace(extra_on_last, name="c1")
    with pytest.raises(ConditionalSpaceError, match=r"'width' with IntDistribution.*conditional"):
        TrialSpace(range_depends, name="c2")
    # Only for a middle value: refused when that architecture is built.
    middle = TrialSpace(extra_in_middle, name="c3")
    with pytest.raises(ConditionalSpaceError, match="'extra'"):
        middle.build_model({"depth": 2})
    missing = TrialSpace(missing_in_middle, name="c4")
    with pytest.raises(ConditionalSpaceError, match=r"did not suggest \['extra'\]"):
        missing.build_model({"depth": 2, "extra": "a"})
    # ...and on a live trial through TrialSpace.build_model.
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"depth": 2})
    trial = study.ask()
    with pytest.raises(ConditionalSpaceError, match="unknown \\['extra'\\]"):
        middle.build_model(trial)


# -- the sampler -------------------------------------------------------------------------------------


def test_search_space_from_trial_0_and_the_objective_may_call_build_model(space, scorer, evolution_options) -> None:
    def objective(trial: optuna.Trial) -> float:
        model = build_model(trial)  # the user's own function, on the live trial
        assert isinstance(model, nn.Module)
        return 0.0

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no parameter falls back to independent sampling
        sampler = TEGSampler(space, scorer, seed=0, steps_per_trial=2, strategy_options=evolution_options)
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=3)
    first = study.trials[0]
    assert first.distributions == space.distributions()
    for trial in study.trials:
        assert set(TEG_ATTRS) - {"index"} <= set(trial.user_attrs)
        assert trial.user_attrs["arch"] == space.format(space.from_params(trial.params))
        assert type(trial.params["width"]) is int and type(trial.params["scale"]) is float
        assert type(trial.params["norm"]) is bool
    assert len({t.user_attrs["arch"] for t in study.trials}) == 3  # guided mode: new architectures only


def test_proposals_are_valid_and_deterministic(space, scorer, evolution_options, trial_params) -> None:
    def run(seed: int) -> list[dict[str, object]]:
        sampler = TEGSampler(space, scorer, seed=seed, strategy_options=evolution_options)
        study = optuna.create_study(sampler=sampler)
        study.optimize(zero_cost_objective(space, scorer), n_trials=8)
        return trial_params(study)

    first = run(0)
    assert run(0) == first
    assert run(1) != first
    choices = space.choices()
    for params in first:
        assert list(params) == list(choices)
        assert all(any(value == o and type(value) is type(o) for o in choices[k]) for k, value in params.items())


def test_prune_strategy_is_refused(space, scorer) -> None:
    with pytest.raises(ValueError, match="supernet.*evolution"):
        TEGSampler(space, scorer, strategy="prune")


def test_resumed_study_continues_like_one_run(space, scorer, tmp_path, evolution_options, trial_params) -> None:
    objective = zero_cost_objective(space, scorer)
    make = lambda: TEGSampler(space, scorer, seed=2, strategy_options=evolution_options)  # noqa: E731
    whole = optuna.create_study(sampler=make())
    whole.optimize(objective, n_trials=8)
    storage = f"sqlite:///{tmp_path / 'resume.db'}"
    for _ in range(2):  # two sessions, each with a fresh sampler on the loaded study
        resumed = optuna.create_study(sampler=make(), storage=storage, study_name="user", load_if_exists=True)
        resumed.optimize(objective, n_trials=4)
    assert trial_params(resumed) == trial_params(whole)


# -- the zero-cost objective ------------------------------------------------------------------------


def test_zero_cost_study_single_objective(space, scorer, evolution_options) -> None:
    study = optuna.create_study(sampler=TEGSampler(space, scorer, seed=0, strategy_options=evolution_options))
    study.optimize(zero_cost_objective(space, scorer), n_trials=6)
    assert len(study.trials) == 6
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        assert set(TEG_ATTRS) - {"index"} <= set(trial.user_attrs) and "index" not in trial.user_attrs
        assert json.loads(trial.user_attrs["arch"]) == trial.params
        assert 0.0 < trial.value <= 3.0
    winner = best_trial(study)
    assert space.parse(winner.user_attrs["arch"]) == space.from_params(winner.params)


def test_zero_cost_study_multi_objective(space, scorer) -> None:
    study = optuna.create_study(directions=list(DIRECTIONS), sampler=TEGSampler(space, scorer, seed=1))
    study.optimize(zero_cost_objective(space, scorer, multi_objective=True), n_trials=5)
    assert len(study.trials) == 5
    for trial in study.trials:
        assert trial.values == [trial.user_attrs[k] for k in ("ntk_cond", "regions", "kr_mse")]
    assert study.best_trials


def test_other_samplers_search_the_space_too(space, scorer) -> None:
    for sampler in (optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0, n_startup_trials=2)):
        study = optuna.create_study(sampler=sampler)
        study.optimize(zero_cost_objective(space, scorer), n_trials=4)
        for trial in study.trials:  # a bad architecture (undefined indicator) is pruned
            assert trial.state == (TrialState.PRUNED if trial.user_attrs["bad"] else TrialState.COMPLETE)
            assert trial.user_attrs["arch"] == space.format(space.from_params(trial.params))


# -- the pruner and the user's modules -------------------------------------------------------------


@pytest.mark.parametrize("guided", [True, False])
def test_pruner_in_a_training_study_leaves_the_users_modules_alone(
    space, guided: bool, make_scorer, search_config, evolution_options
) -> None:
    scorer = make_scorer(space, config=search_config)  # measures afresh
    trained: list[nn.Module] = []
    pruned: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        model = build_model(trial)
        trial.report(0.0, step=0)
        if trial.should_prune():  # before training
            pruned.append(trial.number)
            raise optuna.TrialPruned()
        trained.append(model)
        return 1.0  # train ``model`` here

    BUILT.clear()
    if guided:  # the sampler writes the TEG attributes when it proposes
        sampler = TEGSampler(space, scorer, seed=0, steps_per_trial=2, strategy_options=evolution_options)
        pruner = TEGPruner(n_warmup_trials=2, quantile=0.25)
    else:  # the pruner scores the trial's parameters itself
        sampler = optuna.samplers.RandomSampler(seed=0)
        pruner = TEGPruner(scorer, n_warmup_trials=2, quantile=0.25)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=8)
    assert pruned and all(number >= 2 for number in pruned)
    assert [t.number for t in study.trials if t.state == TrialState.PRUNED] == pruned
    assert all(set(TEG_ATTRS) - {"index"} <= set(t.user_attrs) for t in study.trials)
    # Every module build_model returned, for training or for scoring, is as it was built: no new
    # weights, no hooks left behind.
    assert len(BUILT) >= len(trained) + scorer.n_measured
    for model, state in BUILT:
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
        for module in model.modules():
            assert not module._forward_hooks and not module._forward_pre_hooks and not module._backward_hooks


def test_space_suggest_and_build_model_on_a_live_trial(space) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    trial = study.ask()
    arch = suggest(space, trial)  # no model is built
    model = space.build_model(trial)  # the same values: Optuna answers a repeated suggestion
    assert trial.params == dict(arch) and trial.distributions == space.distributions()
    assert isinstance(model, nn.Module)
    assert isinstance(space.build_model(FixedTrial(dict(arch))), nn.Module)


def test_the_docs_snippets_run(search_config) -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "optuna_user_spaces.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    assert len(blocks) == 2
    code = "\n".join(blocks)
    protocol = 'data="embedded", config=TEGConfig(repeat=1, batch_size=16)'
    assert protocol in code
    code = code.replace(protocol, 'data="synthetic", config=search_config')  # the test's quick protocol
    namespace: dict[str, object] = {"search_config": search_config}
    exec(compile(code, "docs/optuna_user_spaces.md", "exec"), namespace)  # noqa: S102
    study = namespace["study"]
    assert isinstance(study, optuna.Study) and len(study.trials) == 4
    assert isinstance(namespace["model"], nn.Module)
