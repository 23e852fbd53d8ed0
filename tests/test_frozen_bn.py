"""The frozen-BatchNorm NTK path (``TEGConfig.ntk = "frozen-bn"``) against brute force.

Brute force here: each sample run alone through the network, every BatchNorm normalising with the
whole batch's statistics, one backward per sample (written out below, and in the plain reference).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from teg_plugin.config import TEGConfig
from teg_plugin.indicators.frozen_bn import batch_norm_statistics, frozen_batch_norms, frozen_bn_jacobian
from teg_plugin.indicators.measure import measure_mask
from teg_plugin.indicators.ntk import NonFiniteError
from teg_plugin.inputs import ScoringInputs
from teg_plugin.reference.plain import plain_score
from teg_plugin.spaces.nb201 import NB201Space

CPU = torch.device("cpu")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.GroupNorm(2, 4),  # per-sample already: left as it is
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 6),
        nn.BatchNorm1d(6),
        nn.Linear(6, 3),
    ).train()


def _brute_force(net: nn.Module, x: torch.Tensor, names: list[str]) -> torch.Tensor:
    """Per-sample backward passes with each BatchNorm's statistics set by hand from the batch."""
    inputs: dict[str, torch.Tensor] = {}
    norms = {n: m for n, m in net.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    hooks = [
        m.register_forward_hook(lambda m, a, o, n=n: inputs.__setitem__(n, a[0].detach())) for n, m in norms.items()
    ]
    with torch.no_grad():
        net(x)
    for hook in hooks:
        hook.remove()
    params = dict(net.named_parameters())
    rows = []
    for i in range(x.shape[0]):
        h = x[i : i + 1]
        for name, module in net.named_children():
            if name in norms:
                seen = inputs[name]
                dims = [0] + list(range(2, seen.dim()))
                mean, var = seen.mean(dims), seen.var(dims, unbiased=False)
                shape = [1, -1] + [1] * (h.dim() - 2)
                h = (h - mean.view(shape)) / torch.sqrt(var.view(shape) + module.eps)
                h = h * module.weight.view(shape) + module.bias.view(shape)
            else:
                h = module(h)
        grads = torch.autograd.grad(h.sum(), [params[n] for n in names])
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def test_frozen_jacobian_equals_a_per_sample_loop_with_the_batch_statistics() -> None:
    net, x = _net(), torch.randn(5, 3, 6, 6)
    names = [n for n, _ in net.named_parameters() if n.endswith("weight")]
    expected = _brute_force(net, x, names)
    got = frozen_bn_jacobian(net, x, names)
    assert got.shape == expected.shape == (5, sum(p.numel() for n, p in net.named_parameters() if n in names))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    # not the exact (train-mode, whole-batch) Jacobian: the samples interact there
    exact_rows = [
        torch.cat(
            [
                g.reshape(-1)
                for g in torch.autograd.grad(net(x)[i].sum(), [dict(net.named_parameters())[n] for n in names])
            ]
        )
        for i in range(5)
    ]
    assert not torch.allclose(torch.stack(exact_rows), got, rtol=1e-3)


def test_forward_values_equal_train_mode_and_the_network_is_restored() -> None:
    net, x = _net(), torch.randn(7, 3, 6, 6)
    logits, stats = batch_norm_statistics(net, x)
    assert set(stats) == {"1", "9"}  # the BatchNorms only, not the GroupNorm
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    with frozen_batch_norms(net, stats):
        frozen = torch.cat([net(x[i : i + 1]) for i in range(7)])
        assert not net[1].training
    torch.testing.assert_close(frozen, logits, rtol=1e-5, atol=1e-6)
    assert net[1].training and all(torch.equal(b, buffers[n]) for n, b in net.named_buffers())


def test_frozen_jacobian_leaves_grads_alone_and_flags_non_finite_values() -> None:
    net, x = _net(), torch.randn(4, 3, 6, 6)
    frozen_bn_jacobian(net, x, ["0.weight"])
    assert all(p.grad is None for p in net.parameters())
    with pytest.raises(ValueError, match="selected nothing"):
        frozen_bn_jacobian(net, x, [])
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError):
        frozen_bn_jacobian(net, x, ["0.weight"])


@pytest.mark.parametrize(
    "text",
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
        "|none~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|",
    ],
)
def test_scorer_frozen_path_equals_the_plain_reference(text: str, space: NB201Space, embedded, small_config) -> None:
    config = replace(small_config, ntk="frozen-bn")
    inputs = ScoringInputs.draw(embedded, config)
    mask = space.mask_of(space.parse(text))
    fast = measure_mask(space, mask, inputs, config, CPU)
    plain = plain_score(space, mask, inputs, config)
    assert fast.bad is plain.bad is False
    assert fast.ntk_cond == pytest.approx(plain.ntk_cond, rel=1e-5)
    assert fast.kr_mse == pytest.approx(plain.kr_mse, rel=1e-5)
    assert fast.regions == plain.regions
    exact = measure_mask(space, mask, inputs, small_config, CPU)  # same inputs and weights
    assert exact.regions == fast.regions and exact.ntk_cond != pytest.approx(fast.ntk_cond, rel=1e-3)


def test_ntk_mode_enters_the_fingerprint_and_is_validated() -> None:
    assert TEGConfig(ntk="frozen-bn").fingerprint() != TEGConfig().fingerprint()
    assert TEGConfig.from_dict(TEGConfig(ntk="frozen-bn").to_dict()).ntk == "frozen-bn"
    with pytest.raises(ValueError, match="TEGConfig.ntk must be one of exact, frozen-bn, got 'fast'"):
        TEGConfig(ntk="fast")


def test_frozen_scores_are_reproducible_and_thread_independent(space: NB201Space, embedded, small_config) -> None:
    config = replace(small_config, ntk="frozen-bn", repeat=2)
    inputs = ScoringInputs.draw(embedded, config)
    mask = space.mask_of(space.arch_at(6111))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = measure_mask(space, mask, inputs, config, CPU)
        torch.set_num_threads(2)
        two = measure_mask(space, mask, inputs, config, CPU)
    finally:
        torch.set_num_threads(threads)
    assert (one.ntk_cond, one.regions, one.kr_mse) == (two.ntk_cond, two.regions, two.kr_mse)
