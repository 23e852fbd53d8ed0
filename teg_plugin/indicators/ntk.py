"""The empirical NTK: its Jacobian, its condition number (T) and NTK kernel regression (G).

Row ``i`` of the Jacobian ``J`` is the gradient, with respect to the chosen parameters, of the sum
of sample ``i``'s logits, with the network run on the whole batch at once (BatchNorm uses the batch's
statistics, so every row depends on every sample). The NTK is ``Θ = J Jᵀ``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

ParameterFilter = Callable[[str], bool]


class NonFiniteError(ArithmeticError):
    """A network produced NaN or inf logits or gradients."""


def select_parameters(model: nn.Module, keep: ParameterFilter) -> list[tuple[str, nn.Parameter]]:
    """The named parameters of ``model`` for which ``keep(name)`` holds, in registration order."""
    return [(name, p) for name, p in model.named_parameters() if keep(name)]


def is_weight(name: str) -> bool:
    """T's parameter set: every parameter whose name is a weight (conv, linear, norm), no biases."""
    return name.endswith("weight")


def ntk_jacobian(model: nn.Module, inputs: torch.Tensor, parameters: Sequence[nn.Parameter]) -> torch.Tensor:
    """The ``(batch, n_params)`` Jacobian of per-sample logit sums with respect to ``parameters``.

    One forward pass on the whole batch, then one reverse pass per sample through the retained graph.
    Only the requested parameters get gradients; the model's ``.grad`` fields are left untouched.

    Raises:
        ValueError: if the model does not return logits of shape ``(batch, classes)``.
        NonFiniteError: if logits or gradients are NaN or inf.
    """
    if not parameters:
        raise ValueError("no parameters to differentiate: the parameter filter selected nothing")
    with torch.enable_grad():  # also inside a caller's torch.no_grad()
        return _jacobian(model, inputs, parameters)


def check_logits(logits: object, inputs: torch.Tensor) -> None:
    """Refuse a network output that is not finite logits of shape ``(batch, classes)``.

    Raises:
        ValueError: not a tensor of that shape.
        NonFiniteError: NaN or inf logits.
    """
    if not isinstance(logits, torch.Tensor):
        raise ValueError(
            f"the network must return a logits tensor of shape (batch, classes); got a {type(logits).__name__}"
        )
    if logits.dim() != 2 or logits.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"the network must return logits of shape (batch, classes); got {tuple(logits.shape)} "
            f"for a batch of {inputs.shape[0]}"
        )
    if not torch.isfinite(logits).all():
        raise NonFiniteError("the network produced non-finite logits")


def _jacobian(model: nn.Module, inputs: torch.Tensor, parameters: Sequence[nn.Parameter]) -> torch.Tensor:
    logits = model(inputs)
    check_logits(logits, inputs)
    sums = logits.sum(dim=1)
    rows = []
    for i in range(sums.shape[0]):
        grads = torch.autograd.grad(sums[i], parameters, retain_graph=i + 1 < sums.shape[0], allow_unused=True)
        rows.append(torch.cat([_flat(g, p) for g, p in zip(grads, parameters)]))
    jacobian = torch.stack(rows)
    if not torch.isfinite(jacobian).all():
        raise NonFiniteError("the network produced non-finite gradients")
    return jacobian


def _flat(grad: torch.Tensor | None, param: nn.Parameter) -> torch.Tensor:
    # A parameter the output does not depend on (e.g. behind a `none` edge) has an all-zero row block.
    return torch.zeros(param.numel(), device=param.device, dtype=param.dtype) if grad is None else grad.reshape(-1)


def gram(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """``a bᵀ`` in float64 (``b`` defaults to ``a``): an NTK block from two Jacobians."""
    a64 = a.to(torch.float64)
    b64 = a64 if b is None else b.to(torch.float64)
    return a64 @ b64.T


def condition_number(kernel: torch.Tensor) -> float:
    """``λmax / λmin`` of a symmetric PSD kernel; NaN when undefined (``λmin <= 0`` or non-finite)."""
    eigenvalues = torch.linalg.eigvalsh(kernel.to(torch.float64))
    lo, hi = eigenvalues[0].item(), eigenvalues[-1].item()
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0.0:
        return math.nan
    return hi / lo


def centred_one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One-hot labels minus ``1 / num_classes``: targets with zero mean over classes, float64."""
    onehot = torch.nn.functional.one_hot(labels.long(), num_classes).to(torch.float64)
    return onehot - 1.0 / num_classes


def kernel_regression_mse(
    theta_train: torch.Tensor,
    theta_val_train: torch.Tensor,
    y_train: torch.Tensor,
    y_val: torch.Tensor,
    singular_rtol: float,
) -> float:
    """Held-out MSE of NTK kernel regression; NaN when ``Θ(train, train)`` is (numerically) singular.

    ``ŷ = Θ(val, train) Θ(train, train)⁻¹ Y_train`` and the result is the mean over held-out samples of
    ``Σ_classes (ŷ − y)²``. ``Θ(train, train)`` counts as singular when its smallest eigenvalue is at
    most ``singular_rtol`` times its largest.
    """
    k = theta_train.to(torch.float64)
    eigenvalues, vectors = torch.linalg.eigh(k)
    lo, hi = eigenvalues[0].item(), eigenvalues[-1].item()
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= 0.0 or lo <= singular_rtol * hi:
        return math.nan
    # Solve through the eigendecomposition already computed for the singularity check.
    alpha = vectors @ ((vectors.T @ y_train.to(torch.float64)) / eigenvalues[:, None])
    prediction = theta_val_train.to(torch.float64) @ alpha
    mse = ((prediction - y_val.to(torch.float64)) ** 2).sum(dim=1).mean().item()
    return mse if math.isfinite(mse) else math.nan
