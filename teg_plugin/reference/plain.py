"""A plain, slow implementation of the TEG definitions, to check the fast path against.

It follows the paper's formulation literally: the masked supernet (every option of every choice is
computed; an option's output is multiplied by its mask weight, 1/k for each of a choice's k active
options and 0 for the others, and only active options' ReLUs
count for E), one backward pass per sample (under ``ntk="frozen-bn"``: each sample run alone through the
network with every BatchNorm normalising by the whole batch's statistics), separate Jacobians for T and for G, numpy linear
algebra, and an O(N²) pairwise comparison of activation patterns. Nothing here is shared with
:mod:`teg_plugin.indicators` except network construction and name-seeded initialisation.

Option modules must be registered as ``<...>.edges.<choice>.<option>`` (the convention of this
project's supernets).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from teg_plugin.config import FROZEN_BN, TEGConfig
from teg_plugin.indicators.init import init_network, stable_seed
from teg_plugin.inputs import RepeatInputs, ScoringInputs
from teg_plugin.scores import TEGScore
from teg_plugin.spaces import Mask, SearchSpace


def plain_score(space: SearchSpace, mask: Mask, inputs: ScoringInputs, config: TEGConfig) -> TEGScore:
    """TEG indicators of ``mask`` computed the plain way (CPU only).

    Raises:
        ValueError: ``space`` has no thin network (E is counted on one here, as in this project's spaces).
    """
    start = time.perf_counter()
    conds, regions, mses = [], [], []
    for r, batch in enumerate(inputs.repeats):
        proxy = _masked_supernet(space, mask, config, inputs, r)
        weights = [(n, p) for n, p in proxy.named_parameters() if n.endswith("weight")]
        cell_weights = [(n, p) for n, p in weights if space.generalization_parameter(n)]
        jacobian = _frozen_bn_jacobian_loop if config.ntk == FROZEN_BN else _jacobian_loop
        j_t = jacobian(proxy, batch.train_x, weights)
        conds.append(_condition_number(j_t @ j_t.T))
        j_tr = jacobian(proxy, batch.train_x, cell_weights)
        j_val = jacobian(proxy, batch.val_x, cell_weights)
        mses.append(_kernel_regression(j_tr, j_val, batch, config.singular_rtol))
        regions.append(_count_regions_pairwise(space, mask, config, inputs, batch, r))
    bad = any(math.isnan(v) for v in conds + mses)
    return TEGScore(
        ntk_cond=float(np.mean(conds)),
        regions=float(np.mean(regions)),
        kr_mse=float(np.mean(mses)),
        bad=bad,
        reason="undefined indicator" if bad else None,
        seconds=time.perf_counter() - start,
    )


def _option_of(module_name: str) -> tuple[str, str] | None:
    parts = module_name.split(".")
    if "edges" in parts:
        k = parts.index("edges")
        if len(parts) > k + 2:
            return parts[k + 1], parts[k + 2]
    return None


def _apply_mask(net: nn.Module, mask: Mask, full: Mask) -> Callable[[str], bool]:
    """Weight every option module's output by its mask value; return an is-active test by name.

    The supernet ``net`` (built from ``full``) averages an edge's ``n`` options; the weights turn
    that into an average over the ``k`` active ones: ``n / k`` for an active option, 0 otherwise.
    """
    active = {(choice, option) for choice, options in mask.items() for option in options}

    def is_active(module_name: str) -> bool:
        option = _option_of(module_name)
        return option is None or option in active

    for name, module in net.named_modules():
        option = _option_of(name)
        if option is not None and name.count(".") == name.split(".").index("edges") + 2:
            factor = len(full[option[0]]) / len(mask[option[0]]) if option in active else 0.0
            module.register_forward_hook(lambda m, args, out, f=factor: out * f)
    return is_active


def _masked_supernet(space: SearchSpace, mask: Mask, config: TEGConfig, inputs: ScoringInputs, r: int) -> nn.Module:
    net = space.build_proxy_network(
        space.full_mask(),
        width=config.resolved_width(space),
        cells_per_stage=config.cells_per_stage,
        num_classes=inputs.num_classes,
        in_channels=inputs.in_channels,
    )
    init_network(net, stable_seed(config.seed, "proxy", r), config.init)
    _apply_mask(net, mask, space.full_mask())
    return net


def _jacobian_loop(net: nn.Module, x: torch.Tensor, named: list[tuple[str, nn.Parameter]]) -> np.ndarray:
    out = net(x).sum(dim=1)
    rows = []
    for i in range(out.shape[0]):
        net.zero_grad(set_to_none=True)
        out[i].backward(retain_graph=True)
        rows.append(
            np.concatenate(
                [
                    (p.grad if p.grad is not None else torch.zeros_like(p)).detach().numpy().ravel().astype(np.float64)
                    for _, p in named
                ]
            )
        )
    net.zero_grad(set_to_none=True)
    return np.stack(rows)


def _frozen_bn_jacobian_loop(net: nn.Module, x: torch.Tensor, named: list[tuple[str, nn.Parameter]]) -> np.ndarray:
    """Row ``i``: the gradient of sample ``i``'s logit sum, with ``x[i]`` run alone through ``net``
    and every BatchNorm normalising by the statistics the whole batch ``x`` has at its input."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    inputs_seen: dict[nn.Module, torch.Tensor] = {}
    handles = [m.register_forward_pre_hook(lambda m, args: inputs_seen.__setitem__(m, args[0].detach())) for m in norms]
    with torch.no_grad():
        net(x)  # train mode: records what each BatchNorm sees for the whole batch
    for handle in handles:
        handle.remove()
    for m in norms:
        seen = inputs_seen[m].transpose(0, 1).reshape(inputs_seen[m].shape[1], -1)  # (channels, everything else)
        m.running_mean = seen.mean(dim=1)
        m.running_var = ((seen - seen.mean(dim=1, keepdim=True)) ** 2).mean(dim=1)
        m.eval()
    try:
        return np.concatenate([_jacobian_loop(net, x[i : i + 1], named) for i in range(x.shape[0])])
    finally:
        net.train()


def _condition_number(theta: np.ndarray) -> float:
    eig = np.linalg.eigvalsh(theta)
    return float(eig[-1] / eig[0]) if eig[0] > 0 and np.isfinite(eig).all() else math.nan


def _kernel_regression(j_tr: np.ndarray, j_val: np.ndarray, batch: RepeatInputs, rtol: float) -> float:
    k = len(batch.y_train[0])
    y_tr = np.eye(k)[batch.train_y.numpy()] - 1.0 / k
    y_val = np.eye(k)[batch.val_y.numpy()] - 1.0 / k
    theta_tt = j_tr @ j_tr.T
    eig = np.linalg.eigvalsh(theta_tt)
    if not np.isfinite(eig).all() or eig[-1] <= 0 or eig[0] <= rtol * eig[-1]:
        return math.nan
    prediction = (j_val @ j_tr.T) @ np.linalg.solve(theta_tt, y_tr)
    return float(np.mean(np.sum((prediction - y_val) ** 2, axis=1)))


@torch.no_grad()
def _count_regions_pairwise(
    space: SearchSpace, mask: Mask, config: TEGConfig, inputs: ScoringInputs, batch: RepeatInputs, r: int
) -> float:
    thin = space.build_thin_network(space.full_mask(), width=config.regions_width, num_classes=inputs.num_classes)
    if thin is None:
        raise ValueError(f"the plain reference counts E on a thin network; the {space.name} space builds none")
    init_network(thin, stable_seed(config.seed, "thin", r), config.init)
    is_active = _apply_mask(thin, mask, space.full_mask())
    captured: list[torch.Tensor] = []
    for name, module in thin.named_modules():
        if isinstance(module, nn.ReLU) and is_active(name):
            module.register_forward_hook(lambda m, args, out: captured.append((args[0] > 0).flatten(1)))
    rows = []
    for crops in batch.region_batches:
        captured.clear()
        thin(crops)
        rows.append(torch.cat(captured, dim=1))
    patterns = torch.cat(rows).to(torch.float64)
    # Two patterns are equal iff they disagree on no unit; count each distinct pattern once.
    differ = patterns @ (1 - patterns).T
    differ = differ + differ.T
    same = (differ == 0).sum(dim=1).to(torch.float64)
    return float((1.0 / same).sum().round().item())
