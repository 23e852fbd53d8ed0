"""The scorer's fast path equals the plain, literal implementation of the TEG definitions.

The plain one (:mod:`teg_plugin.reference.plain`) runs the masked supernet, one backward per sample,
separate Jacobians for T and G, numpy algebra and an O(N²) pattern count; the fast path builds only
the active ops, shares one Jacobian between T and G and counts patterns with ``unique``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from teg_plugin.config import TEGConfig
from teg_plugin.data import ImageData
from teg_plugin.indicators.measure import measure_mask
from teg_plugin.inputs import ScoringInputs
from teg_plugin.reference.plain import plain_score
from teg_plugin.scores import TEGScore
from teg_plugin.spaces.nb201 import NB201Space

CPU = torch.device("cpu")

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|none~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|",  # none edges
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|avg_pool_3x3~2|",
]


def _assert_same(fast: TEGScore, plain: TEGScore, rtol: float) -> None:
    assert fast.bad is plain.bad is False
    assert fast.ntk_cond == pytest.approx(plain.ntk_cond, rel=rtol)
    assert fast.kr_mse == pytest.approx(plain.kr_mse, rel=rtol)
    assert fast.regions == plain.regions  # exact: both count distinct patterns of the same units


@pytest.mark.parametrize("text", ARCHS)
def test_fast_path_equals_plain_for_architectures(
    text: str, space: NB201Space, embedded_inputs: ScoringInputs, small_config: TEGConfig
) -> None:
    mask = space.mask_of(space.parse(text))
    fast = measure_mask(space, mask, embedded_inputs, small_config, CPU)
    plain = plain_score(space, mask, embedded_inputs, small_config)
    _assert_same(fast, plain, rtol=1e-6)
    assert fast.regions > 1 and fast.ntk_cond > 1


@pytest.mark.parametrize(
    "ops", [("nor_conv_1x1", "avg_pool_3x3"), ("skip_connect", "nor_conv_3x3")], ids=lambda ops: "+".join(ops)
)
def test_fast_path_equals_plain_for_pruned_supernet(
    ops: tuple[str, str], space: NB201Space, embedded_inputs: ScoringInputs, small_config: TEGConfig
) -> None:
    mask = {edge: ops for edge in space.full_mask()}
    fast = measure_mask(space, mask, embedded_inputs, small_config, CPU)
    plain = plain_score(space, mask, embedded_inputs, small_config)
    # With several ops per edge the masked supernet (which multiplies every op's output by its mask
    # value) sums float32 gradients in another order than the pruned network: ~3e-7 apart here.
    _assert_same(fast, plain, rtol=5e-6)


def test_fast_path_equals_plain_with_two_repeats(space: NB201Space, embedded: ImageData) -> None:
    config = TEGConfig(repeat=2, batch_size=8, regions_batch_size=64, regions_batches=2, seed=3)
    inputs = ScoringInputs.draw(embedded, config)
    mask = space.mask_of(space.parse(ARCHS[1]))
    fast = measure_mask(space, mask, inputs, config, CPU)
    _assert_same(fast, plain_score(space, mask, inputs, config), rtol=1e-6)
    # The mean over repeats is not just the first repeat.
    one = replace(config, repeat=1)
    single = measure_mask(space, mask, ScoringInputs.draw(embedded, one), one, CPU)
    assert single.ntk_cond != pytest.approx(fast.ntk_cond, rel=1e-3)


def test_fast_path_equals_plain_with_the_papers_kaiming_init(space: NB201Space, embedded: ImageData) -> None:
    config = TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2, init="kaiming-normal")
    inputs = ScoringInputs.draw(embedded, config)
    mask = space.mask_of(space.parse(ARCHS[0]))
    fast = measure_mask(space, mask, inputs, config, CPU)
    _assert_same(fast, plain_score(space, mask, inputs, config), rtol=1e-6)
    # and the setting is used: the default initialisation gives another condition number
    default = replace(config, init="torch-default")
    assert measure_mask(space, mask, ScoringInputs.draw(embedded, default), default, CPU).ntk_cond != pytest.approx(
        fast.ntk_cond, rel=1e-3
    )


def test_both_flag_a_disconnected_architecture(
    space: NB201Space, embedded_inputs: ScoringInputs, small_config: TEGConfig
) -> None:
    mask = space.mask_of(space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|none~2|"))
    fast = measure_mask(space, mask, embedded_inputs, small_config, CPU)
    plain = plain_score(space, mask, embedded_inputs, small_config)
    assert fast.bad and plain.bad
    assert math.isnan(fast.ntk_cond) and math.isnan(plain.ntk_cond)
    assert math.isnan(fast.kr_mse) and math.isnan(plain.kr_mse)
    # The convs feeding nodes 1 and 2 still run (and own ReLUs), though the output ignores them.
    assert fast.regions == plain.regions > 1
    assert "condition number" in fast.reason and "singular" in fast.reason


def test_fast_path_independent_of_thread_count(space: NB201Space, embedded: ImageData) -> None:
    # The test session runs single-threaded (see conftest); the scorer may run tasks in threads.
    # Bit-identical, so one score cache serves processes run with any thread count. The protocol's
    # batch of 64 (BLAS splits its float64 products across threads; batches of 8 it does not).
    config = TEGConfig(repeat=1, batch_size=64, regions_batch_size=100, regions_batches=2)
    inputs = ScoringInputs.draw(embedded, config)
    saved = torch.get_num_threads()
    for text in ARCHS[:2]:
        mask = space.mask_of(space.parse(text))
        scores = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            try:
                scores.append(measure_mask(space, mask, inputs, config, CPU))
            finally:
                torch.set_num_threads(saved)
        assert torch.get_num_threads() == saved
        assert len({(s.ntk_cond, s.regions, s.kr_mse, s.bad) for s in scores}) == 1, scores


@pytest.fixture(scope="module")
def darts_config() -> TEGConfig:
    return TEGConfig(width=1, repeat=1, batch_size=8, regions_batch_size=100, regions_batches=2)


def test_darts_fast_path_equals_plain_for_a_genotype(embedded: ImageData, darts_config: TEGConfig) -> None:
    from teg_plugin.spaces.darts import DARTS_V2, DartsSpace

    space = DartsSpace()
    inputs = ScoringInputs.draw(embedded, darts_config)
    mask = space.mask_of(DARTS_V2)
    fast = measure_mask(space, mask, inputs, darts_config, CPU)
    plain = plain_score(space, mask, inputs, darts_config)
    # The masked DARTS supernet holds every op of 28 edges; its zero-weighted outputs still enter the
    # float32 sums in another order than the single path's.
    _assert_same(fast, plain, rtol=1e-5)


def test_darts_fast_path_equals_plain_for_a_pruned_supernet(embedded: ImageData, darts_config: TEGConfig) -> None:
    from teg_plugin.spaces.darts import DartsSpace

    space = DartsSpace()
    inputs = ScoringInputs.draw(embedded, darts_config)
    # Two ops on the edges from the cell inputs, none on the others: nodes with one, two or no inputs.
    mask = {key: ("skip_connect", "sep_conv_3x3") if key.endswith(("<-0", "<-1")) else () for key in space.full_mask()}
    fast = measure_mask(space, mask, inputs, darts_config, CPU)
    plain = plain_score(space, mask, inputs, darts_config)
    _assert_same(fast, plain, rtol=1e-5)
