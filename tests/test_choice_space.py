"""ChoiceSpace: a user's categorical choices plus a builder, as a SearchSpace."""

from __future__ import annotations

import random
import re

import pytest
from torch import nn

from teg_plugin.config import TEGConfig
from teg_plugin.scorer import TEGScorer
from teg_plugin.spaces import ChoiceArch, ChoiceSpace
from teg_plugin.strategies import make_strategy

CHOICES = {"width": [4, 8], "kernel": [1, 3], "act": ["relu", "relu6"], "scale": [0.5, 1.0]}


def build(c: dict) -> nn.Module:
    act = nn.ReLU() if c["act"] == "relu" else nn.ReLU6()
    return nn.Sequential(
        nn.Conv2d(3, c["width"], c["kernel"], padding=c["kernel"] // 2),
        nn.BatchNorm2d(c["width"]),
        act,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c["width"], 10),
    )


def thin(c: dict, width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(width, 2, c["kernel"], padding=c["kernel"] // 2),
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2, 10),
    )


SPACE = ChoiceSpace("test-cnn", CHOICES, build, thin=thin)
CONFIG = TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2)


def test_text_and_params_round_trip() -> None:
    rng = random.Random(0)
    for _ in range(20):
        arch = SPACE.sample(rng)
        assert SPACE.parse(SPACE.format(arch)) == arch
        assert SPACE.from_params(SPACE.to_params(arch)) == arch
        assert hash(SPACE.parse(SPACE.format(arch))) == hash(arch)
    assert SPACE.format(SPACE.from_params({"width": 8, "kernel": 3, "act": "relu6", "scale": 1})) == (
        '{"width": 8, "kernel": 3, "act": "relu6", "scale": 1.0}'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not a JSON object"),
        ("[1, 2]", "JSON object of choices"),
        ('{"width": 4, "kernel": 3, "act": "relu"}', "missing key(s) scale"),
        ('{"width": 4, "kernel": 3, "act": "relu", "scale": 1.0, "depth": 2}', "unexpected key(s) depth"),
        ('{"width": 5, "kernel": 3, "act": "relu", "scale": 1.0}', "5 is not an option of test-cnn choice 'width'"),
        ('{"width": true, "kernel": 3, "act": "relu", "scale": 1.0}', "True is not an option"),
    ],
)
def test_bad_text_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        SPACE.parse(text)


@pytest.mark.parametrize(
    ("choices", "message"),
    [({}, "at least one choice"), ({"a": []}, "no options"), ({"a": [1, 1]}, "twice"), ({"a": [[1]]}, "not a str")],
)
def test_bad_choices_are_rejected(choices: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ChoiceSpace("x", choices, build)


@pytest.mark.parametrize("options", ["relu", {"relu", "gelu"}, 3])
def test_options_must_be_an_ordered_list_or_tuple(options: object) -> None:
    # a set's order follows the hash seed (no reproducible sampling); a string is not a list of names
    with pytest.raises(TypeError, match="must be a list or tuple"):
        ChoiceSpace("x", {"act": options}, build)  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("choices", "message"),
    [({1: [1, 2], "1": [3, 4]}, "choice names must be strings, got 1"), ([("a", [1])], "choices must be a dict")],
)
def test_choices_must_be_a_dict_keyed_by_names(choices: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ChoiceSpace("x", choices, build)  # type: ignore[arg-type]


def test_mutate_changes_exactly_one_choice_and_neighbours_hold_every_mutation() -> None:
    rng = random.Random(1)
    arch = SPACE.sample(rng)
    neighbours = SPACE.neighbours(arch)
    assert len(neighbours) == len(CHOICES) and len(set(neighbours)) == len(neighbours)
    for _ in range(30):
        child = SPACE.mutate(arch, rng)
        assert sum(child[k] != arch[k] for k in CHOICES) == 1
        assert child in neighbours


def test_sample_and_mutate_are_deterministic_per_seed() -> None:
    def path(seed: int) -> list[ChoiceArch]:
        rng = random.Random(seed)
        first = SPACE.sample(rng)
        return [first, SPACE.mutate(first, rng), SPACE.mutate(first, rng)]

    assert path(3) == path(3)


def test_scorer_scores_a_choice_arch_and_strategies_search_it() -> None:
    scorer = TEGScorer(SPACE, data="synthetic", config=CONFIG, device="cpu")
    score = scorer.score(SPACE.parse('{"width": 8, "kernel": 3, "act": "relu", "scale": 0.5}'))
    assert not score.bad and score.regions > 1
    for name in ("random", "evolution", "reinforce"):
        strategy = make_strategy(
            name, SPACE, seed=0, **({"population_size": 4, "tournament_size": 2} if name == "evolution" else {})
        )
        for _ in range(5):
            arch = strategy.ask()
            strategy.tell(arch, scorer.score(arch))
        assert strategy.best() in {a for a, _ in strategy.history}


def test_a_choice_space_has_no_supernet() -> None:
    with pytest.raises(ValueError, match="has no supernet"):
        SPACE.build_proxy_network(SPACE.full_mask(), width=3, cells_per_stage=1, num_classes=10)
    assert not SPACE.has_supernet
    # so the scorer refuses its supernet masks at once (pruning with TEG cannot run on it); single
    # architectures, as masks, are still scored
    scorer = TEGScorer(SPACE, data="synthetic", config=CONFIG, device="cpu")
    pruning = make_strategy("prune", SPACE, score_mask=scorer.score_mask_repeats)
    with pytest.raises(ValueError, match="test-cnn has no supernet .* search this space with 'evolution'"):
        pruning.ask()
    assert scorer.n_measured == 0
    arch = SPACE.sample(random.Random(0))
    as_mask, as_arch = scorer.score_mask(SPACE.mask_of(arch)), scorer.score(arch)
    assert (as_mask.ntk_cond, as_mask.regions, as_mask.kr_mse) == (as_arch.ntk_cond, as_arch.regions, as_arch.kr_mse)


def test_without_thin_builder_e_is_counted_on_the_model_itself() -> None:
    space = ChoiceSpace("test-cnn-no-thin", CHOICES, build)
    scorer = TEGScorer(space, data="synthetic", config=CONFIG, device="cpu")
    score = scorer.score(space.sample(random.Random(0)))
    # Patterns of the model on the 2 x 8 T/G images: at most one region per image.
    assert 1 < score.regions <= 2 * CONFIG.batch_size


def test_generalization_filter_is_the_users() -> None:
    space = ChoiceSpace("g", CHOICES, build, generalization_parameter=lambda name: name.startswith("0."))
    assert space.generalization_parameter("0.weight") and not space.generalization_parameter("5.weight")
    assert SPACE.generalization_parameter("5.weight") and not SPACE.generalization_parameter("5.bias")


# -- supernet pruning of a ChoiceSpace given a supernet builder ----------------------------------

_OPS = {
    "conv": lambda w: nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.ReLU()),
    "pool": lambda w: nn.MaxPool2d(3, 1, 1),
    "skip": lambda w: nn.Identity(),
}


class _Mean(nn.Module):
    """The kept ops of one choice, outputs averaged; each op named after itself (stable names)."""

    def __init__(self, ops: tuple, width: int) -> None:
        super().__init__()
        self.ops = nn.ModuleDict({op: _OPS[op](width) for op in ops})

    def forward(self, x):  # type: ignore[no-untyped-def]
        from teg_plugin.spaces._supernet import mean_of_outputs

        return mean_of_outputs([op(x) for op in self.ops.values()])


def _supernet(kept: dict, width: int = 4, in_channels: int = 3) -> nn.Module:
    stem = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU()] if in_channels != width else []
    return nn.Sequential(
        *stem,
        _Mean(kept["a"], width),
        _Mean(kept["b"], width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 10),
    )


def _prunable() -> ChoiceSpace:
    return ChoiceSpace(
        "prunable-test",
        {"a": ["conv", "pool", "skip"], "b": ["conv", "skip"]},
        lambda c: _supernet({k: (v,) for k, v in c.items()}),
        thin=lambda c, w: _supernet({k: (v,) for k, v in c.items()}, w, w),
        supernet=_supernet,
        thin_supernet=lambda kept, w: _supernet(kept, w, w),
    )


def test_a_choice_space_with_a_supernet_builder_is_pruned() -> None:
    space = _prunable()
    assert space.has_supernet and not ChoiceSpace("x", {"a": [1]}, build).has_supernet
    net = space.build_proxy_network({"a": ("skip", "conv"), "b": ("conv",)}, width=1, cells_per_stage=1, num_classes=10)
    assert list(net[2].ops) == ["conv", "skip"]  # kept options in the space's order
    scorer = TEGScorer(space, "synthetic", TEGConfig(repeat=1, batch_size=8, regions_batch_size=50), device="cpu")
    pruning = make_strategy("prune", space, score_mask=scorer.score_mask_repeats)
    found = pruning.run()
    assert set(found) == {"a", "b"} and pruning.n_supernet_evaluations == (1 + 5) + (1 + 2)
    with pytest.raises(ValueError, match="'maxpool' is not an option of prunable-test choice 'a'"):
        space.build_proxy_network(
            {"a": ("maxpool", "conv"), "b": ("conv",)}, width=1, cells_per_stage=1, num_classes=10
        )


def test_tegsampler_prunes_a_choice_space_with_a_supernet() -> None:
    optuna = pytest.importorskip("optuna")
    from teg_plugin.optuna import TEGSampler, zero_cost_objective

    space = _prunable()
    scorer = TEGScorer(space, "synthetic", TEGConfig(repeat=1, batch_size=8, regions_batch_size=50), device="cpu")
    study = optuna.create_study(sampler=TEGSampler(space, scorer, strategy="prune"))
    study.optimize(zero_cost_objective(space, scorer), n_trials=1)
    expected = make_strategy("prune", space, score_mask=scorer.score_mask_repeats).run()
    assert study.trials[0].user_attrs["arch"] == space.format(expected)
    plain = ChoiceSpace("no-supernet", {"a": [1, 2]}, build)
    with pytest.raises(ValueError, match="give the space a supernet builder"):
        TEGSampler(plain, TEGScorer(plain, "synthetic", TEGConfig(repeat=1, batch_size=8)), strategy="prune")
