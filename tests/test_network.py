"""NAS-Bench-201 networks: parameter counts, shapes, mask validation and supernet module names."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from teg_plugin.spaces import count_flops
from teg_plugin.spaces.nb201 import OPS, NB201Arch, NB201Space, build_network, build_thin_network
from teg_plugin.spaces.nb201._network import NB201Network, full_mask, single_path_mask

#: Parameters at C=16, N=5, 10 classes: 73,306 outside the cells (stem 464, reductions 14,464 and
#: 57,600, last BN 128, classifier 650); each nor_conv_1x1 edge adds 5 x (288 + 1,088 + 4,224) and
#: each nor_conv_3x3 edge 5 x (2,336 + 9,280 + 36,992).
BASE_10, BASE_100, PER_CONV1X1, PER_CONV3X3 = 73_306, 79_156, 28_000, 243_040


def _archs() -> list[NB201Arch]:
    fixed = [NB201Arch((op,) * 6) for op in OPS]  # all none, all skip, all 1x1, all 3x3, all pool
    fixed.append(NB201Arch.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"))  # unreachable conv
    fixed.append(
        NB201Arch.parse("|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    )
    rng = random.Random(2024)
    return fixed + [NB201Arch(tuple(rng.choice(OPS) for _ in range(6))) for _ in range(5)]


def _n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("arch", _archs(), ids=str)
def test_nb201_parameter_count_formula(arch: NB201Arch) -> None:
    n1, n3 = arch.ops.count("nor_conv_1x1"), arch.ops.count("nor_conv_3x3")
    net = build_network(arch)  # NB201's own: C=16, N=5, 10 classes
    assert _n_params(net) == BASE_10 + PER_CONV1X1 * n1 + PER_CONV3X3 * n3
    # In millions, as usually quoted: 0.073306 + 0.028 n1 + 0.24304 n3.
    assert _n_params(net) / 1e6 == pytest.approx(0.073306 + 0.028 * n1 + 0.24304 * n3, abs=1e-9)


def test_parameter_count_with_100_classes(space: NB201Space) -> None:
    none = NB201Arch(("none",) * 6)
    conv = NB201Arch(("nor_conv_3x3",) * 6)
    assert _n_params(build_network(none, num_classes=100)) == BASE_100
    net = space.build_proxy_network(space.mask_of(conv), width=16, cells_per_stage=5, num_classes=100)
    assert _n_params(net) == BASE_100 + 6 * PER_CONV3X3


def test_supernet_parameter_count(space: NB201Space) -> None:
    net = space.build_proxy_network(space.full_mask(), width=16, cells_per_stage=5, num_classes=10)
    assert _n_params(net) == BASE_10 + 6 * (PER_CONV1X1 + PER_CONV3X3)


def test_output_shape_and_none_cell_output(space: NB201Space) -> None:
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    arch = space.parse("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    net = space.build_proxy_network(space.mask_of(arch), width=3, cells_per_stage=1, num_classes=7)
    out = net(x)
    assert out.shape == (4, 7) and torch.isfinite(out).all()
    assert out.std(dim=0).min() > 0  # samples differ
    # A cell whose output node only receives `none` edges outputs zeros: every sample gets the same
    # logits, the classifier bias.
    dead = space.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")
    net = space.build_proxy_network(space.mask_of(dead), width=3, cells_per_stage=1, num_classes=7)
    out = net(x)
    assert torch.allclose(out, net.classifier.bias.expand(4, 7))


def test_other_input_channels_and_sizes(space: NB201Space) -> None:
    mask = space.mask_of(
        space.parse("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    )
    net = space.build_proxy_network(mask, width=2, cells_per_stage=2, num_classes=120, in_channels=1)
    assert net(torch.randn(3, 1, 16, 16)).shape == (3, 120)


def test_thin_network_accepts_small_crops(space: NB201Space) -> None:
    arch = space.parse("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    thin = space.build_thin_network(space.mask_of(arch), width=1, num_classes=10)
    assert thin(torch.randn(5, 1, 3, 3)).shape == (5, 10)
    assert isinstance(thin.stem, nn.Identity) and len(thin.cells) == 1
    same = build_thin_network(arch, width=1, num_classes=10)
    assert [n for n, _ in same.named_parameters()] == [n for n, _ in thin.named_parameters()]
    with pytest.raises(RuntimeError):
        thin(torch.randn(5, 3, 3, 3))  # the thin network has `width` input channels, not 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update({"4<-0": ("none",)}), "unknown NB201 edges"),
        (lambda m: m.update({"2<-1": ("nor_conv_5x5",)}), "unknown NB201 ops"),
        (lambda m: m.update({"3<-0": ()}), "edge 3<-0 has no active op"),
        (lambda m: m.pop("1<-0"), "edge 1<-0 has no active op"),
    ],
)
def test_mask_validation(change, message) -> None:
    mask = dict(full_mask())
    change(mask)
    with pytest.raises(ValueError, match=message):
        NB201Network(mask, width=2, cells_per_stage=1, num_classes=10)


def test_network_argument_validation() -> None:
    with pytest.raises(ValueError, match="positive"):
        NB201Network(full_mask(), width=0, cells_per_stage=1, num_classes=10)
    with pytest.raises(ValueError, match="without a stem"):
        NB201Network(full_mask(), width=2, cells_per_stage=1, num_classes=10, in_channels=3, stem=False)


def test_single_path_names_are_a_subset_of_the_supernet(space: NB201Space) -> None:
    rng = random.Random(5)
    supernet = space.build_proxy_network(space.full_mask(), width=2, cells_per_stage=2, num_classes=10)
    super_modules = {n: type(m) for n, m in supernet.named_modules()}
    super_params = {n: p.shape for n, p in supernet.named_parameters()}
    for _ in range(5):
        arch = space.sample(rng)
        assert space.mask_of(arch) == single_path_mask(arch)
        net = space.build_proxy_network(space.mask_of(arch), width=2, cells_per_stage=2, num_classes=10)
        for name, module in net.named_modules():
            assert super_modules.get(name) is type(module), name
        for name, param in net.named_parameters():
            assert super_params[name] == param.shape, name
    # The op on edge 2<-1 of the first cell sits where the module docstring says.
    assert "cells.0.edges.2<-1.nor_conv_3x3" in super_modules


def test_mask_op_order_is_canonical(space: NB201Space) -> None:
    forward = {edge: ("skip_connect", "nor_conv_3x3") for edge in space.full_mask()}
    backward = {edge: ("nor_conv_3x3", "skip_connect") for edge in space.full_mask()}
    a = space.build_proxy_network(forward, width=2, cells_per_stage=1, num_classes=10)
    b = space.build_proxy_network(backward, width=2, cells_per_stage=1, num_classes=10)
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]


def _nb201_flops_formula(arch: NB201Arch, num_classes: int = 10) -> float:
    """NAS-Bench-201's published FLOPs (millions) at C=16, N=5 (shared/data/README.md)."""
    constant = {10: 7.943872, 100: 7.949632}[num_classes]
    counts = arch.ops.count("nor_conv_1x1"), arch.ops.count("nor_conv_3x3"), arch.ops.count("avg_pool_3x3")
    return constant + 4.36224 * counts[0] + 35.81952 * counts[1] + 1.29024 * counts[2]


@pytest.mark.parametrize("arch", _archs(), ids=str)
@pytest.mark.parametrize("num_classes", [10, 100])
def test_nb201_flops_formula(arch: NB201Arch, num_classes: int) -> None:
    flops = count_flops(build_network(arch, num_classes=num_classes), (3, 32, 32))
    assert flops / 1e6 == pytest.approx(_nb201_flops_formula(arch, num_classes), abs=5e-7)


def test_nb201_flops_match_the_ground_truth_table(shared_data) -> None:  # type: ignore[no-untyped-def]
    import csv

    with open(shared_data / "nb201" / "nb201_ground_truth.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in random.Random(7).sample(rows, 40):
        arch = NB201Arch.parse(row["arch_str"])
        flops = count_flops(build_network(arch), (3, 32, 32))
        assert flops / 1e6 == pytest.approx(float(row["flops_m_cifar10"]), abs=5e-7), row["arch_str"]


def test_count_flops_leaves_the_model_as_it_was() -> None:
    net = build_network(NB201Arch(("nor_conv_3x3",) * 6), width=4, cells_per_stage=1)
    net.train()
    count_flops(net, (3, 32, 32))
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())


def test_a_supernet_edge_averages_its_active_ops() -> None:
    from teg_plugin.spaces.nb201._network import NB201Cell

    ops = ("skip_connect", "avg_pool_3x3")
    cell = NB201Cell(2, {edge: ops for edge in full_mask()})
    x = torch.randn(3, 2, 6, 6, generator=torch.Generator().manual_seed(1))
    pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def edge(v: torch.Tensor) -> torch.Tensor:
        return (v + pool(v)) / 2

    n1 = edge(x)
    n2 = edge(x) + edge(n1)
    n3 = edge(x) + edge(n1) + edge(n2)
    assert torch.allclose(cell(x), n3, atol=1e-6)


def test_space_tells_the_architecture_of_its_networks() -> None:
    space = NB201Space()
    arch = NB201Arch.parse("|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    assert space.arch_of_network(build_network(arch, width=4, cells_per_stage=2)) == arch
    assert space.arch_of_network(build_thin_network(arch, width=1)) == arch
    assert space.arch_of_network(NB201Network(full_mask(), width=2, cells_per_stage=1, num_classes=10)) is None
    assert space.arch_of_network(nn.Linear(2, 2)) is None
