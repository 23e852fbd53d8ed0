"""Per-sample NTK Jacobians with BatchNorm's batch statistics held fixed (``TEGConfig.ntk = "frozen-bn"``).

With BatchNorm in train mode every logit depends on every sample of the batch, so the exact Jacobian
(:func:`~teg_plugin.indicators.ntk.ntk_jacobian`) needs one reverse pass through the whole batch per
row. Here the batch statistics are taken in one train-mode forward pass and then held as constants:
every forward value is the train-mode one (up to float round-off), but the samples no longer interact,
so row ``i`` is the gradient of sample ``i``'s logit sum through a network that sees sample ``i``
alone, computed for all samples at once with ``torch.func`` (``vmap`` of ``grad`` over
``functional_call``). Only BatchNorm layers are frozen; other normalisations (GroupNorm, LayerNorm,
InstanceNorm) are per-sample already and are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from teg_plugin.indicators.ntk import NonFiniteError, check_logits

#: The normalisation layers whose batch statistics are frozen.
BATCH_NORMS: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def batch_norm_statistics(
    model: nn.Module, inputs: torch.Tensor
) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The train-mode logits of ``model`` on ``inputs``, and each BatchNorm's batch mean and biased
    variance (what train mode normalises with), by module name.

    ``model`` must be in train mode; its running statistics are updated as by any train-mode pass.
    """
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []

    def recorder(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach()
            dims = [d for d in range(x.dim()) if d != 1]  # every axis but the channels
            stats[name] = (x.mean(dim=dims), x.var(dim=dims, unbiased=False))

        return hook

    try:
        for name, module in model.named_modules():
            if isinstance(module, BATCH_NORMS):
                handles.append(module.register_forward_pre_hook(recorder(name)))
        with torch.no_grad():
            logits = model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return logits, stats


@contextmanager
def frozen_batch_norms(model: nn.Module, stats: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> Iterator[nn.Module]:
    """While active, each BatchNorm of ``model`` named in ``stats`` normalises with those statistics
    (eval mode, running statistics replaced); on exit the modules' mode and buffers are restored."""
    saved = []
    try:
        for name, module in model.named_modules():
            if name in stats:
                saved.append((module, module.training, module.running_mean, module.running_var))
                module.running_mean, module.running_var = stats[name]
                module.train(False)
        yield model
    finally:
        for module, training, mean, var in saved:
            module.running_mean, module.running_var = mean, var
            module.train(training)


def frozen_bn_jacobian(model: nn.Module, inputs: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
    """The ``(batch, n_params)`` Jacobian of per-sample logit sums with respect to the parameters
    ``names`` of ``model`` (in that order), with BatchNorm statistics frozen at the batch's.

    ``model`` is used by this call alone while it runs (its BatchNorms are switched temporarily);
    its parameters and ``.grad`` fields are left untouched.

    Raises:
        ValueError: no parameter names, or the model does not return logits ``(batch, classes)``.
        NonFiniteError: if logits or gradients are NaN or inf.
    """
    if not names:
        raise ValueError("no parameters to differentiate: the parameter filter selected nothing")
    logits, stats = batch_norm_statistics(model, inputs)
    check_logits(logits, inputs)
    params = dict(model.named_parameters())
    chosen = {name: params[name].detach() for name in names}

    def logit_sum(weights: dict[str, torch.Tensor], sample: torch.Tensor) -> torch.Tensor:
        return functional_call(model, weights, (sample.unsqueeze(0),)).sum()

    with frozen_batch_norms(model, stats), torch.enable_grad():
        grads = vmap(grad(logit_sum), in_dims=(None, 0))(chosen, inputs)
    jacobian = torch.cat([grads[name].reshape(inputs.shape[0], -1) for name in names], dim=1)
    if not torch.isfinite(jacobian).all():
        raise NonFiniteError("the network produced non-finite gradients")
    return jacobian
