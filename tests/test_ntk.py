"""The empirical NTK: Jacobian, condition number (T), kernel regression (G), against brute force / numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from teg_plugin.indicators.ntk import (
    NonFiniteError,
    centred_one_hot,
    condition_number,
    gram,
    is_weight,
    kernel_regression_mse,
    ntk_jacobian,
    select_parameters,
)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))


def _conv_bn() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=False),
        nn.BatchNorm2d(4, track_running_stats=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 5),
    )


def _row(params: list[nn.Parameter]) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])


def _brute_force(model: nn.Module, x: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    """Row i: a fresh forward of the WHOLE batch, then ``.backward()`` of sample i's logit sum."""
    rows = []
    for i in range(x.shape[0]):
        model.zero_grad(set_to_none=True)
        model(x).sum(dim=1)[i].backward()
        rows.append(_row(params).clone())
    model.zero_grad(set_to_none=True)
    return torch.stack(rows)


def _per_sample_forward(model: nn.Module, x: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    """The WRONG Jacobian: each sample run alone (BatchNorm then sees a batch of one)."""
    rows = []
    for i in range(x.shape[0]):
        model.zero_grad(set_to_none=True)
        model(x[i : i + 1]).sum().backward()
        rows.append(_row(params).clone())
    model.zero_grad(set_to_none=True)
    return torch.stack(rows)


# --- ntk_jacobian --------------------------------------------------------------------------------


def test_jacobian_matches_brute_force_mlp() -> None:
    model = _mlp()
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    params = list(model.parameters())
    jac = ntk_jacobian(model, x, params)
    assert jac.shape == (5, sum(p.numel() for p in params))
    torch.testing.assert_close(jac, _brute_force(model, x, params), rtol=1e-5, atol=1e-6)
    # Without BatchNorm the samples are independent, so running them one at a time agrees too.
    torch.testing.assert_close(jac, _per_sample_forward(model, x, params), rtol=1e-5, atol=1e-6)


def test_jacobian_matches_brute_force_conv_bn_batch_coupled() -> None:
    model = _conv_bn()
    x = torch.randn(6, 3, 5, 5, generator=torch.Generator().manual_seed(3))
    params = [p for _, p in select_parameters(model, is_weight)]
    jac = ntk_jacobian(model, x, params)
    torch.testing.assert_close(jac, _brute_force(model, x, params), rtol=1e-5, atol=1e-6)
    # Train-mode BatchNorm couples the samples: a per-sample forward gives a clearly different
    # Jacobian, so an implementation that ran samples separately would fail the check above.
    wrong = _per_sample_forward(model, x, params)
    assert (jac - wrong).abs().max() > 1e-2 * jac.abs().max()


def test_jacobian_leaves_grads_untouched_and_zero_fills_unused_parameters() -> None:
    model = _mlp()
    unused = nn.Linear(2, 2)  # not part of the computation
    x = torch.randn(4, 4, generator=torch.Generator().manual_seed(4))
    params = [model[0].weight, unused.weight, model[2].bias]
    jac = ntk_jacobian(model, x, params)
    assert all(p.grad is None for p in list(model.parameters()) + list(unused.parameters()))
    n0, n1 = model[0].weight.numel(), unused.weight.numel()
    assert torch.equal(jac[:, n0 : n0 + n1], torch.zeros(4, n1))
    # The gradient of a logit sum w.r.t. the output bias is all ones.
    assert torch.equal(jac[:, n0 + n1 :], torch.ones(4, 3))
    torch.testing.assert_close(jac, _brute_force(model, x, params), rtol=1e-5, atol=1e-6)


def test_jacobian_rejects_non_finite_logits() -> None:
    class NaNNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) * float("nan")

    model = NaNNet()
    with pytest.raises(NonFiniteError, match="non-finite logits"):
        ntk_jacobian(model, torch.ones(4, 3), list(model.parameters()))
    assert issubclass(NonFiniteError, ArithmeticError)


def test_jacobian_rejects_non_finite_gradients() -> None:
    class SqrtZero(nn.Module):
        # Finite logits (sqrt(0) = 0) but an infinite derivative at 0.
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sqrt(self.fc(x) * 0.0)

    model = SqrtZero()
    with pytest.raises(NonFiniteError, match="non-finite gradients"):
        ntk_jacobian(model, torch.ones(4, 3), list(model.parameters()))


@pytest.mark.parametrize(
    ("head", "shape"),
    [
        (lambda out: out.sum(dim=1), "(4,)"),  # one number per sample
        (lambda out: out.unsqueeze(-1), "(4, 3, 1)"),  # an extra dimension
        (lambda out: out.mean(dim=0, keepdim=True), "(1, 3)"),  # batch collapsed
    ],
)
def test_jacobian_rejects_output_that_is_not_batch_by_classes(head, shape) -> None:
    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _mlp()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return head(self.body(x))

    model = Wrapped()
    with pytest.raises(ValueError, match=r"\(batch, classes\)") as info:
        ntk_jacobian(model, torch.ones(4, 4), list(model.parameters()))
    assert shape in str(info.value)


def test_jacobian_needs_parameters() -> None:
    with pytest.raises(ValueError, match="no parameters"):
        ntk_jacobian(_mlp(), torch.ones(2, 4), [])


def test_select_parameters_and_is_weight() -> None:
    model = _conv_bn()
    names = [name for name, _ in select_parameters(model, is_weight)]
    assert names == ["0.weight", "1.weight", "5.weight"]  # registration order, no biases
    assert not is_weight("5.bias") and is_weight("cells.0.edges.1<-0.nor_conv_3x3.1.weight")


def test_gram_is_float64_outer_product() -> None:
    gen = torch.Generator().manual_seed(5)
    a, b = torch.randn(3, 7, generator=gen), torch.randn(2, 7, generator=gen)
    assert gram(a).dtype == torch.float64
    np.testing.assert_allclose(gram(a).numpy(), a.double().numpy() @ a.double().numpy().T, rtol=1e-12)
    np.testing.assert_allclose(gram(b, a).numpy(), b.double().numpy() @ a.double().numpy().T, rtol=1e-12)
    assert gram(b, a).shape == (2, 3)


# --- condition_number ----------------------------------------------------------------------------


def test_condition_number_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    kernel = q @ np.diag([0.5, 1.0, 3.0, 40.0]) @ q.T
    kernel = (kernel + kernel.T) / 2
    eig = np.linalg.eigvalsh(kernel)
    expected = eig[-1] / eig[0]
    assert expected == pytest.approx(80.0, rel=1e-10)
    assert condition_number(torch.from_numpy(kernel)) == pytest.approx(expected, rel=1e-10)
    # float32 input is promoted; the answer stays close.
    assert condition_number(torch.from_numpy(kernel).float()) == pytest.approx(80.0, rel=1e-4)


@pytest.mark.parametrize(
    "kernel",
    [
        torch.zeros(3, 3, dtype=torch.float64),  # all-zero NTK (e.g. output disconnected)
        torch.diag(torch.tensor([3.0, 1.0, 0.0], dtype=torch.float64)),  # singular
        torch.tensor([[1.0, 0.0], [0.0, -2.0]], dtype=torch.float64),  # not PSD
    ],
)
def test_condition_number_undefined_is_nan(kernel: torch.Tensor) -> None:
    assert math.isnan(condition_number(kernel))


# --- centred_one_hot and kernel_regression_mse ---------------------------------------------------


def test_centred_one_hot() -> None:
    labels = torch.tensor([0, 3, 3, 9])
    targets = centred_one_hot(labels, 10)
    assert targets.dtype == torch.float64 and targets.shape == (4, 10)
    np.testing.assert_allclose(targets.sum(dim=1).numpy(), 0.0, atol=1e-15)
    assert targets[1, 3] == pytest.approx(0.9) and targets[1, 0] == pytest.approx(-0.1)
    assert torch.equal(targets.argmax(dim=1), labels)


def _regression_data(seed: int, n_train: int = 8, n_val: int = 5, n_params: int = 20, classes: int = 4):
    rng = np.random.default_rng(seed)
    j_train, j_val = rng.normal(size=(n_train, n_params)), rng.normal(size=(n_val, n_params))
    y_train = centred_one_hot(torch.from_numpy(rng.integers(0, classes, n_train)), classes)
    y_val = centred_one_hot(torch.from_numpy(rng.integers(0, classes, n_val)), classes)
    return j_train, j_val, y_train, y_val


def test_kernel_regression_mse_matches_numpy_closed_form() -> None:
    j_train, j_val, y_train, y_val = _regression_data(6)
    theta_tt, theta_vt = j_train @ j_train.T, j_val @ j_train.T
    prediction = theta_vt @ np.linalg.solve(theta_tt, y_train.numpy())
    expected = np.mean(np.sum((prediction - y_val.numpy()) ** 2, axis=1))
    got = kernel_regression_mse(
        torch.from_numpy(theta_tt), torch.from_numpy(theta_vt), y_train, y_val, singular_rtol=1e-7
    )
    assert got == pytest.approx(expected, rel=1e-9)
    # Predicting the training batch itself reproduces its targets: MSE ~ 0.
    on_train = kernel_regression_mse(
        torch.from_numpy(theta_tt), torch.from_numpy(theta_tt), y_train, y_train, singular_rtol=1e-7
    )
    assert on_train == pytest.approx(0.0, abs=1e-12)


def test_kernel_regression_nan_when_train_kernel_singular() -> None:
    j_train, j_val, y_train, y_val = _regression_data(7)
    j_train[3] = j_train[1]  # two identical training samples: Θ(train, train) has rank n-1
    theta_tt, theta_vt = torch.from_numpy(j_train @ j_train.T), torch.from_numpy(j_val @ j_train.T)
    assert math.isnan(kernel_regression_mse(theta_tt, theta_vt, y_train, y_val, singular_rtol=1e-7))
    zeros = torch.zeros_like(theta_tt)
    assert math.isnan(kernel_regression_mse(zeros, torch.zeros_like(theta_vt), y_train, y_val, singular_rtol=1e-7))


def test_kernel_regression_singular_rtol_threshold() -> None:
    theta = torch.diag(torch.tensor([1.0, 1e-3], dtype=torch.float64))
    y = centred_one_hot(torch.tensor([0, 1]), 2)
    assert math.isnan(kernel_regression_mse(theta, theta, y, y, singular_rtol=1e-2))
    assert kernel_regression_mse(theta, theta, y, y, singular_rtol=1e-4) == pytest.approx(0.0, abs=1e-12)
