"""A user's own NNI ModelSpace (LayerChoice, InputChoice, nni.choice): its choices as a teg space,
its frozen models scored by TEGEvaluator(space=None), and TEG strategies searching it in NNI."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nni", reason='NNI is not installed: pip install "teg-plugin[nni]"')

# teg_plugin.nni first: it sets NNI's framework to "none" before nni.nas is imported.
from teg_plugin.nni import (  # noqa: E402, I001
    NNIChoiceSpace,
    TEGEvaluator,
    TEGEvolution,
    TEGRandom,
    TEGReinforce,
    TEGStrategy,
    space_from_model_space,
)

import nni  # noqa: E402
import nni.experiment.experiment  # noqa: E402
import nni.nas.experiment.experiment  # noqa: E402
import torch  # noqa: E402
from nni.mutable import ExpressionConstraint, MutableDict  # noqa: E402
from nni.nas.evaluator import Evaluator  # noqa: E402
from nni.nas.experiment import NasExperiment, NasExperimentConfig  # noqa: E402
from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace, MutableConv2d, MutableLinear  # noqa: E402
from nni.nas.space import SimplifiedModelSpace, model_context  # noqa: E402
from torch import nn  # noqa: E402

from teg_plugin.nni._user_space import MAX_OPTIONS, sample_text  # noqa: E402
from teg_plugin.scorer import TEGScorer  # noqa: E402
from teg_plugin.scores import TEGScore, distinct_order  # noqa: E402
from teg_plugin.spaces import ChoiceArch  # noqa: E402
from teg_plugin.strategies import make_strategy  # noqa: E402

SMALL = {"repeat": 1, "batch_size": 8, "regions_batch_size": 64, "regions_batches": 2}


class TinyNet(ModelSpace):
    """Every kind of choice: nni.choice (width), LayerChoice over a dict and over a list, a
    single-pick InputChoice, a two-of-three InputChoice and a choice of tuple values."""

    def __init__(self, in_channels: int = 3, stem: bool = True, widths: tuple[int, ...] = (2, 4)) -> None:
        super().__init__()
        width = nni.choice("width", list(widths))
        self.stem = nn.Sequential(MutableConv2d(in_channels, width, 3, padding=1), nn.ReLU()) if stem else nn.ReLU()
        self.op = LayerChoice(
            {
                "conv3x3": nn.Sequential(MutableConv2d(width, width, 3, padding=1), nn.ReLU()),
                "conv1x1": nn.Sequential(MutableConv2d(width, width, 1), nn.ReLU()),
                "pool": nn.MaxPool2d(3, 1, 1),
            },
            label="op",
        )
        self.act = LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
        self.skip = InputChoice(2, 1, label="skip")
        self.mix = InputChoice(3, 2, reduction="sum", label="mix")
        self.pool = self.add_mutable(nni.choice("pool", [(1, 1), (2, 2)]))
        self.head = MutableLinear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        a = self.act(self.op(s))
        b = self.skip([s, a])
        c = self.mix([s, a, b])
        return self.head(nn.functional.adaptive_avg_pool2d(c, 1).flatten(1))


def tiny_thin(sample: dict[str, Any], width: int) -> nn.Module:
    """E's thin network of a TinyNet sample: no stem, ``width`` channels (made under a model context,
    as NNI makes its models: TinyNet has a mutable of its own, so it has no ``freeze``)."""
    with model_context({**sample, "width": width}):
        return TinyNet(in_channels=width, stem=False, widths=(width,))


def frozen(sample: dict[str, Any]) -> TinyNet:
    """The model of ``sample``, made as NNI makes it (TinyNet.freeze is not available, see above)."""
    with model_context(sample):
        return TinyNet()


SAMPLE = {"width": 4, "op": "conv3x3", "act": 0, "skip": [1], "mix": [0, 2], "pool": (2, 2)}


@pytest.fixture(autouse=True)
def _no_current_trial() -> Any:
    """NNI's sequential engine leaves its last model as the trial's current parameter after an
    experiment, and ``Evaluator.mock_runtime`` refuses to run while there is one: start and end
    every test outside any trial."""
    import nni.trial

    nni.trial._params = None
    yield
    nni.trial._params = None


@pytest.fixture(scope="module")
def model_space() -> TinyNet:
    return TinyNet()


@pytest.fixture(scope="module")
def space(model_space: TinyNet) -> NNIChoiceSpace:
    return space_from_model_space(model_space)


def test_choices_of_every_kind(space: NNIChoiceSpace) -> None:
    assert space.choices() == {
        "width": (2, 4),  # nni.choice
        "op": ("conv3x3", "conv1x1", "pool"),  # LayerChoice over a dict: its keys
        "act": (0, 1),  # LayerChoice over a list: the indices
        "skip": (0, 1),  # InputChoice(2, n_chosen=1): the candidates
        "mix": ("[0, 1]", "[0, 2]", "[1, 2]"),  # InputChoice(3, n_chosen=2): one option per pair
        "pool": ("(1, 1)", "(2, 2)"),  # values JSON cannot hold: their repr
    }
    assert space.name.startswith("nni:") and space.name.endswith("TinyNet")
    arch = space.arch_of_sample(SAMPLE)
    assert dict(arch) == {"width": 4, "op": "conv3x3", "act": 0, "skip": 1, "mix": "[0, 2]", "pool": "(2, 2)"}
    assert space.sample_of(arch) == SAMPLE
    assert space.format(arch) == sample_text(SAMPLE)
    assert space.parse(space.format(arch)) == arch  # through JSON, the tuple (2, 2) comes back as a list


def test_every_nni_sample_is_one_arch(model_space: TinyNet, space: NNIChoiceSpace) -> None:
    # NNI's own enumeration of the space: each sample is one architecture, every architecture once.
    archs = set()
    for sample in MutableDict(model_space.simplify()).grid():
        arch = space.arch_of_sample(sample)
        assert space.sample_of(arch) == dict(sample)
        archs.add(arch)
    assert len(archs) == math.prod(len(options) for options in space.choices().values()) == 144
    # The models the space builds are NNI's frozen models, and run.
    arch = space.arch_of_sample(SAMPLE)
    model = space.build_proxy_network(space.mask_of(arch), width=3, cells_per_stage=1, num_classes=10)
    assert isinstance(model, TinyNet) and isinstance(model.op, nn.Sequential)
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 10)


def test_samples_in_other_spellings(space: NNIChoiceSpace) -> None:
    # InputChoice candidates in another order, and the options themselves, name the same architecture.
    arch = space.arch_of_sample(SAMPLE)
    assert space.arch_of_sample({**SAMPLE, "mix": [2, 0], "extra": 1}) == arch
    assert space.arch_of_sample(dict(arch)) == arch
    with pytest.raises(ValueError, match="'op'"):
        space.arch_of_sample({**SAMPLE, "op": "conv7x7"})
    with pytest.raises(ValueError, match="mix"):
        space.arch_of_sample({**SAMPLE, "mix": [0, 0]})
    with pytest.raises(ValueError, match="lacks"):
        space.arch_of_sample({"width": 4})


class _Continuous(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.rate = self.add_mutable(nni.uniform("dropout", 0.0, 0.5))
        depth = self.add_mutable(nni.choice("depth", [1, 2]))
        self.add_mutable(ExpressionConstraint(depth < 3, label="deep"))
        self.head = nn.Linear(2, 2)


class _ManyInputs(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.pick = InputChoice(20, n_chosen=10, label="pick")


class _NoChoice(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(2, 2)


def test_unsupported_mutables_are_named() -> None:
    with pytest.raises(ValueError, match=r"'dropout' is continuous.*nni\.choice\('dropout'.*'deep' is a constraint"):
        space_from_model_space(_Continuous())
    with pytest.raises(ValueError, match=rf"'pick'.*184756 subsets, more than {MAX_OPTIONS}"):
        space_from_model_space(_ManyInputs())
    with pytest.raises(ValueError, match="no choices"):
        space_from_model_space(_NoChoice())
    with pytest.raises(TypeError, match="ModelSpace"):
        space_from_model_space(nn.Linear(2, 2))


@pytest.fixture(scope="module")
def evaluator() -> TEGEvaluator:
    return TEGEvaluator(space=None, data="synthetic", config=SMALL, device="cpu", thin=f"{__name__}:tiny_thin")


def test_evaluator_scores_a_frozen_user_model(evaluator: TEGEvaluator, model_space: TinyNet) -> None:
    model = frozen(SAMPLE)
    before = {name: p.clone() for name, p in model.state_dict().items()}
    result = evaluator.evaluate(model, sample=SAMPLE)
    assert set(result) == {"default", "ntk_cond", "regions", "kr_mse", "bad"}
    assert result["bad"] is False and -3.0 <= result["default"] < 0.0
    assert all(math.isfinite(result[key]) for key in ("ntk_cond", "regions", "kr_mse"))
    # The user's model is not touched: same weights, same mode.
    assert all(torch.equal(before[name], p) for name, p in model.state_dict().items())
    assert model.training

    # The same score as a TEGScorer of the derived space (same networks, same inputs, same key).
    scorer = TEGScorer(
        space_from_model_space(model_space, thin=tiny_thin), "synthetic", evaluator.scorer.config, device="cpu"
    )
    expected = scorer.score(scorer.space.arch_of_sample(SAMPLE))
    assert scorer.fingerprint == evaluator.scorer.inputs.fingerprint
    assert (result["ntk_cond"], result["regions"], result["kr_mse"]) == pytest.approx(
        (expected.ntk_cond, expected.regions, expected.kr_mse)
    )


def test_evaluator_remembers_samples(evaluator: TEGEvaluator, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = {**SAMPLE, "op": "pool", "act": 1}
    model = frozen(sample)
    first = evaluator.evaluate(model, sample=sample)
    calls = []
    monkeypatch.setattr(evaluator.scorer, "score", lambda *a, **k: calls.append(1) or TEGScore.flagged("re-measured"))
    again = evaluator.evaluate(frozen(sample), sample=dict(reversed(list(sample.items()))))  # keys in any order
    assert calls == [] and again["ntk_cond"] == first["ntk_cond"] and again["bad"] is False


def test_evaluator_reports_inside_nni(evaluator: TEGEvaluator, model_space: TinyNet) -> None:
    simplified = SimplifiedModelSpace.from_model(model_space, evaluator)
    frozen = simplified.freeze({**SAMPLE, "width": 2})
    with Evaluator.mock_runtime(frozen):
        result = evaluator.evaluate(frozen.executable_model())  # the sample comes from NNI
    assert frozen.metric == result["default"] and math.isfinite(frozen.metric)
    assert result["bad"] is False


def test_evaluator_ignores_a_finished_model_left_as_the_trial_parameter(evaluator: TEGEvaluator) -> None:
    import nni.trial
    from nni.nas.space import ModelStatus

    leftover = SimplifiedModelSpace.from_model(TinyNet(), evaluator).freeze(SAMPLE)
    leftover.status = ModelStatus.Trained
    nni.trial._params = {"parameter_id": 0, "parameters": leftover}  # as a finished NNI run leaves it
    assert evaluator.arch_of(frozen(SAMPLE)) is None
    leftover.status = ModelStatus.Training
    assert evaluator.arch_of(frozen(SAMPLE)) == sample_text(SAMPLE)


def test_evaluator_without_thin_or_sample(model_space: TinyNet) -> None:
    plain = TEGEvaluator(space=None, data="synthetic", config=SMALL, device="cpu")
    model = frozen(SAMPLE)
    with pytest.warns(UserWarning, match="saturated"):  # E counted on this model itself: every image its own pattern
        result = plain.evaluate(model)
    assert result["bad"] is False and result["regions"] == 2 * SMALL["batch_size"]
    with pytest.raises(ValueError, match="sample"):
        TEGEvaluator(space=None, data="synthetic", config=SMALL, device="cpu", thin=tiny_thin).evaluate(model)
    with pytest.raises(ValueError, match="import path"):
        TEGEvaluator(space=None, thin="no_colon")
    with pytest.raises(ValueError, match="cannot load"):
        TEGEvaluator(space=None, thin="teg_plugin.nni:no_such_function")
    with pytest.raises(ValueError, match="space=None"):
        TEGEvaluator(thin=f"{__name__}:tiny_thin")


def test_evaluator_is_traced(evaluator: TEGEvaluator) -> None:
    copy = evaluator.trace_copy().get()
    assert copy.scorer is evaluator.scorer
    assert copy.trace_kwargs["thin"] == f"{__name__}:tiny_thin" and copy.trace_kwargs["space"] is None


# -- TEG strategies on a user space, in NNI's sequential engine ---------------------------------


def _search(strategy: TEGStrategy, evaluator: TEGEvaluator, home: Path, top_k: int = 10) -> list[dict]:
    config = NasExperimentConfig("sequential", "simplified")
    config.experiment_working_directory = str(home)
    experiment = NasExperiment(TinyNet(), evaluator, strategy, config)
    try:
        experiment.run()
        return experiment.export_top_models(top_k=top_k, formatter="dict")
    finally:
        experiment.stop()


BUDGET = 4


@pytest.mark.parametrize(
    ("make", "name", "options"),
    [
        (lambda: TEGRandom(space=None, seed=5, budget=BUDGET), "random", {}),
        (
            lambda: TEGEvolution(space=None, seed=5, budget=BUDGET, population_size=2, tournament_size=2),
            "evolution",
            {"population_size": 2, "tournament_size": 2},
        ),
        (lambda: TEGReinforce(space=None, seed=5, budget=BUDGET), "reinforce", {}),
    ],
    ids=["random", "evolution", "reinforce"],
)
def test_strategy_searches_a_user_space(
    make: Any, name: str, options: dict, evaluator: TEGEvaluator, nni_home: Path
) -> None:
    strategy = make()
    assert strategy.space is None and strategy.algorithm is None  # read from the model space at the start
    top = _search(strategy, evaluator, nni_home)
    # NNI's sequential engine leaves its last model as the current trial parameter; the strategy
    # puts back what was there before the run (and the evaluator would not take a trained model
    # for the one being evaluated anyway).
    assert nni.get_current_parameter() is None
    assert isinstance(strategy.space, NNIChoiceSpace)
    assert strategy.space.choices()["op"] == ("conv3x3", "conv1x1", "pool")

    results = strategy.results
    assert len(results) == BUDGET and all(isinstance(arch, ChoiceArch) for arch, _ in results)
    assert not any(score.bad for _, score in results)
    # The algorithm ran unchanged: the same proposals as driving it directly with the same scores.
    algorithm = make_strategy(name, space_from_model_space(TinyNet()), seed=5, **options)
    for arch, score in results:
        assert algorithm.ask() == arch
        algorithm.tell(arch, score)
        sample = strategy.sample_of(arch)
        assert evaluator.evaluate(frozen(sample), sample=sample)["ntk_cond"] == score.ntk_cond
    # export_top_models: each architecture once, ranked among the distinct ones; best() is the first.
    archs, scores = [arch for arch, _ in results], [score for _, score in results]
    top_archs = [strategy.space.arch_of_sample(sample) for sample in top]
    assert top_archs[0] == strategy.best()
    assert top_archs == [archs[i] for i in distinct_order(archs, scores)]


def test_user_space_search_is_deterministic(nni_home: Path) -> None:
    runs = []
    for run in range(2):
        # Evaluators of different names share no scores: each run measures its models itself.
        evaluator = TEGEvaluator(
            space=None,
            data="synthetic",
            config=SMALL,
            device="cpu",
            thin=f"{__name__}:tiny_thin",
            name=f"tiny-determinism-{run}",
        )
        strategy = TEGEvolution(space=None, seed=11, budget=3, population_size=2, tournament_size=2)
        _search(strategy, evaluator, nni_home)
        runs.append(
            [
                (strategy.space.format(arch), score.ntk_cond, score.regions, score.kr_mse)
                for arch, score in strategy.results
            ]
        )
    assert runs[0] == runs[1]


class _Engine:
    """Enough of an engine for TEGStrategy.initialize."""

    def register_model_event_callback(self, *args: Any) -> None:
        pass


def test_state_dict_before_the_space_is_known(evaluator: TEGEvaluator, nni_home: Path) -> None:
    strategy = TEGRandom(space=None, seed=2, budget=3)
    _search(strategy, evaluator, nni_home)
    state = strategy.state_dict()
    assert all(text.startswith("{") for text, _ in state["results"])

    restored = TEGRandom(space=None, seed=2, budget=3)
    restored.load_state_dict(state)  # the space is not known yet: replayed at initialisation
    assert restored.state_dict() == state and restored.results == []
    restored.initialize(SimplifiedModelSpace.from_model(TinyNet(), evaluator), _Engine())
    assert restored.results == strategy.results
    assert restored.algorithm.ask() == strategy.algorithm.ask()


def test_nb201_strategy_points_at_space_none(evaluator: TEGEvaluator) -> None:
    with pytest.raises(ValueError, match="space=None"):
        TEGRandom(budget=1).initialize(SimplifiedModelSpace.from_model(TinyNet(), evaluator), _Engine())


def test_docstring_examples() -> None:
    # tests/test_docstrings.py leaves the optional teg_plugin.nni out.
    import doctest

    import teg_plugin.nni._user_space as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0 and result.attempted > 0
