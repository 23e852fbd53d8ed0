"""Linear regions (E): activation patterns on hand-countable networks, and hook hygiene."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from teg_plugin.indicators.regions import (
    NoReLUError,
    activation_patterns,
    count_distinct_patterns,
    recording_patterns,
)


def _line_net(knots: list[float], act: nn.Module | None = None) -> nn.Sequential:
    """Input t on a line -> k units t - knot_k -> ReLU: unit k is on exactly when t > knot_k."""
    linear = nn.Linear(1, len(knots))
    with torch.no_grad():
        linear.weight.fill_(1.0)
        linear.bias.copy_(-torch.tensor(knots))
    return nn.Sequential(linear, act if act is not None else nn.ReLU())


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_single_relu_unit_gives_two_patterns() -> None:
    net = _line_net([0.5])
    x = torch.tensor([[-2.0], [0.0], [1.0], [3.0]])
    patterns = activation_patterns(net, [x])
    assert patterns.dtype == torch.bool
    assert patterns.tolist() == [[False], [False], [True], [True]]
    assert count_distinct_patterns(patterns) == 2
    # Inputs on one side only visit one region.
    assert count_distinct_patterns(activation_patterns(net, [x[2:]])) == 1


@pytest.mark.parametrize("k", [1, 3, 7])
def test_k_units_with_distinct_knots_give_k_plus_one_regions(k: int) -> None:
    knots = [float(i) for i in range(k)]
    net = _line_net(knots)
    # Several points in each of the k+1 intervals, split over two batches.
    t = torch.linspace(-1.0, k - 0.5, 8 * (k + 1))[:, None] + 0.01
    patterns = activation_patterns(net, [t[::2], t[1::2]])
    assert patterns.shape == (t.shape[0], k)
    assert count_distinct_patterns(patterns) == k + 1
    # Points only left of the second knot see two regions.
    if k > 1:
        assert count_distinct_patterns(activation_patterns(net, [t[t[:, 0] < 1.0]])) == 2


def test_patterns_concatenate_units_of_every_relu_in_call_order() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 4), nn.ReLU())
    x = torch.randn(10, 2)
    patterns = activation_patterns(net, [x])
    assert patterns.shape == (10, 7)
    with torch.no_grad():
        h1 = net[0](x)
        h2 = net[2](torch.relu(h1))
    assert torch.equal(patterns, torch.cat([h1 > 0, h2 > 0], dim=1))


def test_relu6_records_both_knees_even_in_place() -> None:
    x = torch.tensor([[-1.0], [3.0], [7.0], [9.0]])
    for inplace in (False, True):
        patterns = activation_patterns(_line_net([0.0], nn.ReLU6(inplace=inplace)), [x])
        assert patterns.int().tolist() == [[0, 0], [1, 0], [1, 1], [1, 1]], f"inplace={inplace}"
        assert count_distinct_patterns(patterns) == 3


def test_in_place_relu_patterns_equal_out_of_place() -> None:
    x = torch.linspace(-2, 2, 9)[:, None]
    a = activation_patterns(_line_net([-0.5, 0.5], nn.ReLU(inplace=True)), [x])
    b = activation_patterns(_line_net([-0.5, 0.5], nn.ReLU()), [x])
    assert torch.equal(a, b) and count_distinct_patterns(a) == 3


def test_count_distinct_patterns_handmade() -> None:
    m = torch.tensor([[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 0, 0], [0, 1, 1]], dtype=torch.bool)
    assert count_distinct_patterns(m) == 3
    assert count_distinct_patterns(torch.eye(5, dtype=torch.bool)) == 5
    assert count_distinct_patterns(torch.zeros(4, 6, dtype=torch.bool)) == 1
    assert count_distinct_patterns(torch.zeros(3, 0, dtype=torch.bool)) == 1  # no units: one region
    assert count_distinct_patterns(torch.zeros(0, 0, dtype=torch.bool)) == 0  # no inputs
    with pytest.raises(ValueError, match="2-D"):
        count_distinct_patterns(torch.zeros(4, dtype=torch.bool))


def test_no_relu_raises() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    with pytest.raises(NoReLUError, match="no ReLU-family"):
        activation_patterns(net, [torch.ones(3, 2)])
    assert issubclass(NoReLUError, ValueError)
    # `keep` selecting no ReLU is the same error; and no hook is left behind.
    relu_net = _line_net([0.0])
    with pytest.raises(NoReLUError):
        with recording_patterns(relu_net, keep=["0"]):
            pass
    assert _hooks(relu_net) == 0


def test_keep_restricts_recording() -> None:
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 3), nn.ReLU())
    with recording_patterns(net, keep=["3"]) as records:
        net(torch.ones(5, 1))
    assert [r.shape for r in records] == [(5, 3)]


def test_hooks_removed_after_use() -> None:
    net = _line_net([0.0, 1.0])
    with recording_patterns(net) as records:
        assert _hooks(net) == 1
        net(torch.ones(2, 1))
    assert len(records) == 1 and _hooks(net) == 0
    activation_patterns(net, [torch.ones(2, 1)])
    assert _hooks(net) == 0
    # Later forwards record nothing.
    net(torch.ones(2, 1))
    assert len(records) == 1


def test_hooks_removed_when_forward_raises() -> None:
    net = _line_net([0.0])
    bad_input = torch.ones(3, 5)  # the linear layer expects 1 feature
    with pytest.raises(RuntimeError):
        activation_patterns(net, [bad_input])
    assert _hooks(net) == 0
    with pytest.raises(RuntimeError):
        with recording_patterns(net):
            net(bad_input)
    assert _hooks(net) == 0
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
