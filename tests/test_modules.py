"""ModuleScorer: TEG indicators of any nn.Module, leaving the module untouched."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from teg_plugin.config import TEGConfig
from teg_plugin.modules import ModuleScorer, NoReLUError, score_module
from teg_plugin.scorer import TEGScorer
from teg_plugin.spaces import NB201Space

CONFIG = TEGConfig(repeat=2, batch_size=8, regions_batch_size=64, regions_batches=2)


def cnn(width: int, in_channels: int = 3) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 10),
    )


def thin(width: int) -> nn.Module:
    return cnn(2, in_channels=width)


@pytest.fixture(scope="module")
def scorer() -> ModuleScorer:
    return ModuleScorer(data="synthetic", config=CONFIG, device="cpu")


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def test_the_model_is_left_exactly_as_it_was(scorer: ModuleScorer) -> None:
    model = cnn(8).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    score = scorer.score(model, thin=thin)
    assert not score.bad and score.regions > 1
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not model.training and _hooks(model) == 0
    assert all(p.grad is None for p in model.parameters())


def test_scores_do_not_depend_on_the_models_weights_unless_asked(scorer: ModuleScorer) -> None:
    a, b = cnn(8), cnn(8)
    with torch.no_grad():
        for p in b.parameters():
            p.mul_(3.0)
    assert scorer.score(a, thin=thin).ntk_cond == scorer.score(b, thin=thin).ntk_cond
    kept_a = scorer.score(a, thin=thin, reinitialise=False)
    kept_b = scorer.score(b, thin=thin, reinitialise=False)
    assert kept_a.kr_mse != kept_b.kr_mse


def test_a_builder_gets_the_protocol_width(scorer: ModuleScorer) -> None:
    widths = []

    def builder(width: int) -> nn.Module:
        widths.append(width)
        return cnn(width)

    scorer.score(builder, thin=thin)
    assert widths and set(widths) == {scorer.config.width} == {3}  # CONFIG leaves width to the protocol: NB201's 3


def test_scoring_inside_no_grad_works_and_is_identical(scorer: ModuleScorer) -> None:
    model = cnn(8)
    expected = scorer.score(model, thin=thin)
    with torch.no_grad():
        inside = scorer.score(model, thin=thin)
    assert (inside.ntk_cond, inside.regions, inside.kr_mse) == (expected.ntk_cond, expected.regions, expected.kr_mse)


def test_same_scores_as_the_space_scorer_for_an_nb201_network() -> None:
    space = NB201Space()
    arch = space.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    mask = space.mask_of(space.canonical(arch))  # the scorer measures the class representative
    by_space = TEGScorer(space, data="synthetic", config=CONFIG, device="cpu").score(arch)
    by_module = ModuleScorer(data="synthetic", config=CONFIG, device="cpu").score(
        lambda w: space.build_proxy_network(mask, width=w, cells_per_stage=1, num_classes=10),
        thin=lambda w: space.build_thin_network(mask, width=w, num_classes=10),
        generalization_parameter=space.generalization_parameter,
    )
    assert (by_module.ntk_cond, by_module.regions, by_module.kr_mse) == (
        by_space.ntk_cond,
        by_space.regions,
        by_space.kr_mse,
    )


def test_without_thin_network_a_saturated_e_is_warned_about(scorer: ModuleScorer) -> None:
    with pytest.warns(UserWarning, match="E is saturated"):
        score = scorer.score(cnn(64))
    assert score.regions == 2 * CONFIG.batch_size


def test_a_thin_e_does_not_warn(scorer: ModuleScorer) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scorer.score(cnn(4), thin=thin)


class _Tuple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = cnn(4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        return out, out


class _NoReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        (_Tuple(), ValueError, "logits tensor"),
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), ValueError, r"logits of shape \(batch, classes\)"),
        (_NoReLU(), NoReLUError, "no ReLU-family activation modules"),
        ("resnet", TypeError, "expected an nn.Module"),
        (lambda width: "not a module", TypeError, "not an nn.Module"),
    ],
)
def test_models_that_do_not_fit_the_protocol_get_clear_errors(scorer: ModuleScorer, model, error, message) -> None:
    with pytest.raises(error, match=message):
        scorer.score(model)


def test_rank_orders_models_and_score_module_is_a_shortcut() -> None:
    scorer = ModuleScorer(data="synthetic", config=CONFIG, device="cpu")
    positions = scorer.rank([cnn(2), cnn(8), cnn(16)], thin=thin)
    assert sorted(positions) == [1, 2, 3] or len(set(positions)) < 3
    one = score_module(cnn(8), data="synthetic", config=CONFIG, thin=thin, device="cpu")
    assert one.ntk_cond == scorer.score(cnn(8), thin=thin).ntk_cond


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_scores_match_cpu() -> None:
    cpu = ModuleScorer(data="synthetic", config=CONFIG, device="cpu").score(cnn(8), thin=thin)
    gpu = ModuleScorer(data="synthetic", config=CONFIG, device="cuda").score(cnn(8), thin=thin)
    assert gpu.ntk_cond == pytest.approx(cpu.ntk_cond, rel=1e-3)
    assert gpu.kr_mse == pytest.approx(cpu.kr_mse, rel=1e-3)


def test_networks_that_do_not_take_the_protocol_inputs_get_a_clear_error(scorer: ModuleScorer) -> None:
    with pytest.raises(ValueError, match=r"thin network takes crops of shape \(batch, 1, 3, 3\)"):
        scorer.score(cnn(4), thin=lambda width: cnn(2, in_channels=3))
    with pytest.raises(ValueError, match=r"takes images of shape \(batch, 3, H, W\)"):
        scorer.score(cnn(4, in_channels=1), thin=thin)


class _NaNActivations(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, 4, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x) * float("nan")).mean((2, 3)))


def test_non_finite_activations_in_the_thin_network_flag_the_model_bad(scorer: ModuleScorer) -> None:
    # NaN > 0 is False: counted naively, every input would share one "pattern" and E would look valid.
    score = scorer.score(cnn(4), thin=_NaNActivations)
    assert score.bad and "non-finite activations" in score.reason


def test_user_space_networks_that_fail_get_clear_errors_through_teg_scorer() -> None:
    from teg_plugin.spaces import ChoiceSpace

    def build(choices: dict) -> nn.Module | None:
        if choices["head"] == "none":
            return None
        if choices["head"] == "ok":
            return cnn(4)
        # A Linear that does not fit the conv's output: PyTorch's shape error inside the forward.
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(7, 10))

    space = ChoiceSpace("heads", {"head": ["ok", "wide", "none"]}, build)
    scorer = TEGScorer(space, data="synthetic", config=CONFIG, device="cpu")
    with pytest.raises(ValueError, match=r"failed on the protocol's inputs \(mat1 and mat2 shapes"):
        scorer.score({"head": "wide"})
    with pytest.raises(TypeError, match="returned a NoneType, not an nn.Module"):
        scorer.score({"head": "none"})
