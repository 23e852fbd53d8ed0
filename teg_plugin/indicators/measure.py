"""Measure T, E and G of one (super)network mask: the single-path fast path used by the scorer."""

from __future__ import annotations

import math
import statistics
import time

import torch

from teg_plugin.config import TEGConfig
from teg_plugin.indicators.init import init_network, stable_seed
from teg_plugin.indicators.ntk import (
    NonFiniteError,
    condition_number,
    gram,
    is_weight,
    kernel_regression_mse,
    ntk_jacobian,
    select_parameters,
)
from teg_plugin.indicators.regions import activation_patterns, count_distinct_patterns
from teg_plugin.inputs import RepeatInputs, ScoringInputs
from teg_plugin.scores import TEGScore
from teg_plugin.spaces import Mask, SearchSpace


def measure_mask(
    space: SearchSpace, mask: Mask, inputs: ScoringInputs, config: TEGConfig, device: torch.device
) -> TEGScore:
    """The TEG indicators of the network of ``mask`` (an architecture or a pruned supernet).

    Only the active options are built and run, so an architecture's cost is that of its own path.
    Never raises for a bad network: NaN/inf or an undefined indicator gives a ``bad`` score.
    """
    start = time.perf_counter()
    conds, regions, mses = [], [], []
    try:
        for r, repeat_inputs in enumerate(inputs.repeats):
            kappa, mse = _ntk_indicators(space, mask, inputs, config, repeat_inputs.to(device), r, device)
            conds.append(kappa)
            mses.append(mse)
            regions.append(_regions(space, mask, inputs, config, repeat_inputs, r, device))
    except NonFiniteError as err:
        return TEGScore.flagged(str(err), time.perf_counter() - start)
    seconds = time.perf_counter() - start
    reasons = []
    if any(math.isnan(k) for k in conds):
        reasons.append("NTK condition number undefined (smallest eigenvalue <= 0)")
    if any(math.isnan(m) for m in mses):
        reasons.append("singular training kernel in NTK kernel regression")
    return TEGScore(
        ntk_cond=statistics.fmean(conds),
        regions=statistics.fmean(regions),
        kr_mse=statistics.fmean(mses),
        bad=bool(reasons),
        reason="; ".join(reasons) or None,
        seconds=seconds,
    )


def _ntk_indicators(
    space: SearchSpace,
    mask: Mask,
    inputs: ScoringInputs,
    config: TEGConfig,
    batch: RepeatInputs,
    repeat: int,
    device: torch.device,
) -> tuple[float, float]:
    net = space.build_proxy_network(
        mask,
        width=config.width,
        cells_per_stage=config.cells_per_stage,
        num_classes=inputs.num_classes,
        in_channels=inputs.in_channels,
    )
    init_network(net, stable_seed(config.seed, "proxy", repeat)).to(device)
    named = select_parameters(net, is_weight)
    # G's parameters are a subset of T's: its training-batch Jacobian is a column slice of T's.
    columns, offset = [], 0
    for name, param in named:
        if space.generalization_parameter(name):
            columns.append(torch.arange(offset, offset + param.numel(), device=device))
        offset += param.numel()
    g_params = [p for name, p in named if space.generalization_parameter(name)]
    if not g_params:
        raise ValueError("the space selects no parameters for G (generalization_parameter)")

    j_train = ntk_jacobian(net, batch.train_x, [p for _, p in named])
    kappa = condition_number(gram(j_train))
    j_train_g = j_train[:, torch.cat(columns)]
    j_val = ntk_jacobian(net, batch.val_x, g_params)
    mse = kernel_regression_mse(
        gram(j_train_g), gram(j_val, j_train_g), batch.y_train, batch.y_val, config.singular_rtol
    )
    return kappa, mse


def _regions(
    space: SearchSpace,
    mask: Mask,
    inputs: ScoringInputs,
    config: TEGConfig,
    batch: RepeatInputs,
    repeat: int,
    device: torch.device,
) -> float:
    thin = space.build_thin_network(mask, width=config.regions_width, num_classes=inputs.num_classes)
    init_network(thin, stable_seed(config.seed, "thin", repeat)).to(device)
    patterns = activation_patterns(thin, (b.to(device) for b in batch.region_batches))
    return float(count_distinct_patterns(patterns))
