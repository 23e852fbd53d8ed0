"""Zero-cost proxies: each on a tiny network against a brute-force or closed-form value; flags; cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from teg_plugin.cache import ScoreCache
from teg_plugin.indicators.init import stable_seed
from teg_plugin.proxies import PROXIES, ProxyInputs, ProxyScorer, get_proxy, parse_proxy_names
from teg_plugin.proxies.zen import gaussian_init

DISCONNECTED = "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|skip_connect~1|none~2|"
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def _conv_net() -> nn.Module:
    """Conv(1->2, 3x3) + BN + ReLU, global pooling, Linear(2->3): 31 parameters."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1, bias=False),
        nn.BatchNorm2d(2, track_running_stats=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2, 3),
    ).double()


def _inputs(make, x: torch.Tensor, y: torch.Tensor, num_classes: int = 3, seed: int = 0) -> ProxyInputs:
    template = make()

    def network() -> nn.Module:
        import copy

        return copy.deepcopy(template).train()

    return ProxyInputs(network, network, x, y, num_classes, seed, torch.device("cpu"))


def _batch(n: int = 6, shape: tuple[int, ...] = (1, 4, 4)) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn((n, *shape), generator=gen, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2][:n])


def _loss_of(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(nn.functional.cross_entropy(net(x), y))


def _fd_gradient(
    net: nn.Module, param: torch.Tensor, x: torch.Tensor, y: torch.Tensor, h: float = 1e-6
) -> torch.Tensor:
    """dL/dparam by central differences, one entry at a time."""
    grad = torch.zeros_like(param)
    flat, out = param.data.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        keep = float(flat[i])
        flat[i] = keep + h
        up = _loss_of(net, x, y)
        flat[i] = keep - h
        down = _loss_of(net, x, y)
        flat[i] = keep
        out[i] = (up - down) / (2 * h)
    return grad


def _weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_params_and_flops_closed_form() -> None:
    x, y = _batch()
    inputs = _inputs(_conv_net, x, y)
    assert get_proxy("params")(inputs) == pytest.approx(31e-6)
    # conv: 9 MACs x 32 outputs + 16 inputs; BN, ReLU: 32 each; pooling: 32 + 2; linear: 6
    assert get_proxy("flops")(inputs) == pytest.approx((9 * 32 + 16 + 32 + 32 + 34 + 6) / 1e6)


def test_params_and_flops_of_nb201_match_its_formulas(make_scorer) -> None:
    scorer = make_scorer()
    values = ProxyScorer(scorer).values([RESNET, DISCONNECTED], "params,flops")
    # NB201 at C=16, N=5, 10 classes: two 3x3 convs, and no conv (README of the shared data)
    assert values[0]["params"] == pytest.approx(0.073306 + 2 * 0.24304, abs=1e-9)
    assert values[0]["flops"] == pytest.approx(7.943872 + 2 * 35.81952, abs=1e-6)
    assert values[1]["params"] == pytest.approx(0.073306, abs=1e-9)
    assert values[1]["flops"] == pytest.approx(7.943872 + 1.29024, abs=1e-6)


def test_l2_norm_is_the_sum_of_weight_norms() -> None:
    x, y = _batch()
    inputs = _inputs(_conv_net, x, y)
    net = inputs.network()
    expected = sum(np.sqrt((w.detach().numpy() ** 2).sum()) for w in _weights(net))
    assert get_proxy("l2_norm")(inputs) == pytest.approx(expected, rel=1e-12)


def test_synflow_of_a_linear_network_is_ln_of_depth_times_flow() -> None:
    # A positive network of L linear layers is 1-homogeneous in each layer's weights, so each
    # layer's sum of w * dR/dw is R itself: S = L * R, R = 1^T |W3| |W2| |W1| 1. BN is removed.
    def make() -> nn.Module:
        torch.manual_seed(3)
        return nn.Sequential(
            nn.Linear(4, 5, bias=False),
            nn.BatchNorm1d(5),
            nn.ReLU(),
            nn.Linear(5, 3, bias=False),
            nn.ReLU(),
            nn.Linear(3, 2, bias=False),
        )

    x = torch.randn(6, 4)
    inputs = _inputs(make, x, torch.zeros(6, dtype=torch.long), num_classes=2)
    w1, w2, w3 = (m.weight.detach().double().abs().numpy() for m in make() if isinstance(m, nn.Linear))
    flow = np.ones(2) @ w3 @ w2 @ w1 @ np.ones(4)
    assert get_proxy("synflow")(inputs) == pytest.approx(math.log(3 * flow), rel=1e-12)


def test_snip_and_grad_norm_match_finite_differences() -> None:
    x, y = _batch()
    inputs = _inputs(_conv_net, x, y)
    net = inputs.network()
    grads = [_fd_gradient(net, w, x, y) for w in _weights(net)]
    snip = sum(float((w.detach() * g).abs().sum()) for w, g in zip(_weights(net), grads))
    norm = sum(float(g.norm()) for g in grads)
    assert get_proxy("snip")(inputs) == pytest.approx(snip, rel=1e-6)
    assert get_proxy("grad_norm")(inputs) == pytest.approx(norm, rel=1e-6)


def test_grasp_matches_a_finite_difference_hessian_vector_product() -> None:
    x, y = _batch()
    inputs = _inputs(_conv_net, x, y)
    net = inputs.network()
    weights = _weights(net)
    g = [_fd_gradient(net, w, x, y) for w in weights]
    eps = 1e-4

    def shifted_gradients(sign: float) -> list[torch.Tensor]:
        with torch.no_grad():
            for w, d in zip(weights, g):
                w.add_(sign * eps * d)
        out = [_fd_gradient(net, w, x, y, h=1e-5) for w in weights]
        with torch.no_grad():
            for w, d in zip(weights, g):
                w.sub_(sign * eps * d)
        return out

    up, down = shifted_gradients(1.0), shifted_gradients(-1.0)
    hg = [(a - b) / (2 * eps) for a, b in zip(up, down)]
    expected = sum(float((-w.detach() * h).sum()) for w, h in zip(weights, hg))
    assert get_proxy("grasp")(inputs) == pytest.approx(expected, rel=1e-3, abs=1e-7)


def test_fisher_matches_finite_differences_of_channel_scaling() -> None:
    # sum_{h,w} a * dL/da of image n, channel k = d/dt L(channel k of image n scaled by 1 + t) at t = 0.
    x, y = _batch()
    inputs = _inputs(_conv_net, x, y)
    net = inputs.network()
    expected, h = 0.0, 1e-6
    for layer in (m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))):
        channels = layer.weight.shape[0]
        per = np.zeros((x.shape[0], channels))
        for n in range(x.shape[0]):
            for k in range(channels):

                def scale(_m, _a, out, t=0.0):  # noqa: ANN001
                    out = out.clone()
                    out[n, k] = out[n, k] * (1 + t)
                    return out

                values = []
                for t in (h, -h):
                    handle = layer.register_forward_hook(lambda m, a, o, t=t: scale(m, a, o, t))
                    values.append(_loss_of(net, x, y))
                    handle.remove()
                per[n, k] = (values[0] - values[1]) / (2 * h)
        expected += float((0.5 * (per**2).mean(0)).sum()) * layer.weight[0].numel()
    assert get_proxy("fisher")(inputs) == pytest.approx(expected, rel=1e-5)


def _fd_input_jacobian(net: nn.Module, x: torch.Tensor, h: float = 1e-6) -> np.ndarray:
    """Row i: d(sum of the batch's logits)/d(image i), by central differences."""
    jac = np.zeros((x.shape[0], x[0].numel()))
    for i in range(x.shape[0]):
        for j in range(x[0].numel()):
            values = []
            for step in (h, -h):
                moved = x.clone()
                moved[i].view(-1)[j] += step
                with torch.no_grad():
                    values.append(float(net(moved).sum()))
            jac[i, j] = (values[0] - values[1]) / (2 * h)
    return jac


def test_jacov_and_epe_nas_match_their_formulas_on_a_finite_difference_jacobian() -> None:
    x, y = _batch(6, (1, 3, 3))
    inputs = _inputs(_conv_net, x, y)
    jac = _fd_input_jacobian(inputs.network(), x)
    v = np.linalg.eigvals(np.corrcoef(jac)).real
    k = 1e-5
    assert get_proxy("jacov")(inputs) == pytest.approx(-np.sum(np.log(v + k) + 1 / (v + k)), rel=1e-5)
    labels = y.numpy()
    expected = sum(abs(np.log(np.abs(np.corrcoef(jac[labels == c])) + k).sum()) for c in np.unique(labels))
    assert get_proxy("epe_nas")(inputs) == pytest.approx(expected, rel=1e-5)


def test_nwot_is_the_log_determinant_of_counted_agreements() -> None:
    x, y = _batch()
    inputs = _inputs(_conv_net, x, y)
    net = inputs.network()
    codes: list[np.ndarray] = []
    relu = next(m for m in net.modules() if isinstance(m, nn.ReLU))
    handle = relu.register_forward_hook(lambda m, a, o: codes.append((a[0] > 0).reshape(len(x), -1).numpy()))
    with torch.no_grad():
        net(x)
    handle.remove()
    c = codes[0]
    n = len(x)
    kernel = np.array([[sum(int(c[i, u] == c[j, u]) for u in range(c.shape[1])) for j in range(n)] for i in range(n)])
    assert get_proxy("nwot")(inputs) == pytest.approx(np.linalg.slogdet(kernel.astype(float))[1], rel=1e-12)


def test_zen_uses_the_running_variance_pytorch_would_hold() -> None:
    # Zen-NAS reads BN running variances after its two passes; with PyTorch's own running statistics
    # (momentum 0.1 from 1) on the same Gaussian weights and inputs, the score must be the same.
    x, y = _batch(8)
    seed = 5
    inputs = _inputs(_conv_net, x, y, seed=seed)
    net = (
        gaussian_init(
            nn.Sequential(
                nn.Conv2d(1, 2, 3, padding=1, bias=False),
                nn.BatchNorm2d(2),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(2, 3),
            ),
            seed,
        )
        .double()
        .train()
    )
    gen = torch.Generator().manual_seed(stable_seed(seed, "zen", "inputs"))
    a = torch.randn(x.shape, generator=gen).double()
    e = torch.randn(x.shape, generator=gen).double()
    features = nn.Sequential(*list(net)[:3])
    with torch.no_grad():
        delta = (features(a) - features(a + 0.01 * e)).abs().flatten(1).sum(1).mean()
    bn = net[1]
    expected = math.log(float(delta)) + math.log(math.sqrt(float(bn.running_var.mean())))
    assert get_proxy("zen")(inputs) == pytest.approx(expected, rel=1e-6)


def test_every_registered_proxy_is_named_and_documented() -> None:
    assert set(PROXIES) == {
        "params",
        "flops",
        "synflow",
        "snip",
        "grasp",
        "fisher",
        "grad_norm",
        "jacov",
        "nwot",
        "epe_nas",
        "l2_norm",
        "zen",
    }
    for name, proxy in PROXIES.items():
        module = __import__(f"teg_plugin.proxies.{name}", fromlist=["PROXY"])
        assert proxy.name == name and "Reference" in (module.__doc__ or "") and "Definition" in (module.__doc__ or "")


def test_parse_proxy_names() -> None:
    assert parse_proxy_names(" nwot,synflow ,nwot") == ("nwot", "synflow")
    assert parse_proxy_names("all") == tuple(PROXIES)
    with pytest.raises(ValueError, match="unknown proxy 'naswot'"):
        parse_proxy_names("naswot")
    with pytest.raises(ValueError, match="comma-separated"):
        parse_proxy_names("synflow,,nwot")


def test_a_disconnected_network_is_flagged_not_an_error(make_scorer) -> None:
    results = ProxyScorer(make_scorer(), shape=(4, 1)).measure([DISCONNECTED], "all")[0]
    for name in ("synflow", "jacov", "nwot", "epe_nas", "zen"):
        assert results[name].bad and math.isnan(results[name].value) and results[name].reason
    for name in ("params", "flops", "l2_norm"):
        assert not results[name].bad and math.isfinite(results[name].value)


def test_the_cache_holds_each_proxy_on_its_own(make_scorer) -> None:
    cache = ScoreCache("sqlite://")
    scorer = make_scorer(cache=cache)
    first = ProxyScorer(scorer, shape=(4, 1))
    a = first.values([RESNET, DISCONNECTED], "synflow,nwot")
    assert first.n_measured == 4
    b = first.values([RESNET], "synflow,l2_norm")  # only l2_norm is new
    assert first.n_measured == 5 and b[0]["synflow"] == a[0]["synflow"]
    again = ProxyScorer(make_scorer(cache=cache), shape=(4, 1))
    c = again.measure([RESNET, DISCONNECTED], "nwot,synflow,l2_norm")
    assert again.n_measured == 1  # l2_norm of DISCONNECTED, never asked before
    assert c[0]["nwot"].value == a[0]["nwot"] and c[1]["nwot"].bad and c[0]["nwot"].seconds == 0.0
    # other network settings are other cache entries
    wider = ProxyScorer(make_scorer(cache=cache), shape=(5, 1))
    assert wider.values([RESNET], "nwot")[0]["nwot"] != a[0]["nwot"] and wider.n_measured == 1


def test_values_are_reproducible_and_shared_with_the_tegscorer(make_scorer) -> None:
    names = "snip,jacov,zen"
    one = ProxyScorer(make_scorer(), shape=(4, 1)).values([RESNET], names)
    two = ProxyScorer(make_scorer(), shape=(4, 1)).values([RESNET], names)
    assert one == two


def test_optuna_objective_and_sampler_store_a_user_attr_per_proxy(make_scorer) -> None:
    import optuna

    from teg_plugin.optuna import TEGSampler, zero_cost_objective

    scorer = make_scorer()
    sampler = TEGSampler(
        scorer.space,
        scorer,
        seed=0,
        proxies="params,nwot",
        strategy_options={"population_size": 2, "tournament_size": 2},
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(zero_cost_objective(scorer.space, scorer, proxies=["params", "nwot", "l2_norm"]), n_trials=3)
    for trial in study.trials:
        arch = trial.user_attrs["arch"]
        expected = scorer.proxies([arch], "params,nwot,l2_norm")[0]
        for name, value in expected.items():
            stored = trial.user_attrs[f"proxy_{name}"]
            assert stored == (value if math.isfinite(value) else None)
    with pytest.raises(ValueError, match="unknown proxy"):
        zero_cost_objective(scorer.space, scorer, proxies="synflw")


def test_nni_evaluator_reports_a_metric_per_proxy() -> None:
    pytest.importorskip("nni")
    from teg_plugin.nni import NB201ModelSpace, TEGEvaluator, sample_from_arch

    config = {"repeat": 1, "batch_size": 8, "regions_batch_size": 64, "regions_batches": 2}
    evaluator = TEGEvaluator(data="synthetic", device="cpu", config=config, proxies="params,synflow")
    sample = sample_from_arch(DISCONNECTED)
    model = NB201ModelSpace(width=4, cells_per_stage=1).freeze(sample)
    result = evaluator.evaluate(model, sample)
    assert result["proxy_params"] == pytest.approx(0.073306, abs=1e-9)  # NB201 C=16, N=5 with no conv
    assert result["proxy_synflow"] is None and result["bad"] is True  # no path: flagged, reported as None
    assert {"default", "ntk_cond", "regions", "kr_mse"} <= set(result)
    with pytest.raises(ValueError, match="unknown proxy"):
        TEGEvaluator(data="synthetic", device="cpu", proxies="synflow,zenn")
    with pytest.raises(ValueError, match="registered space"):
        TEGEvaluator(space=None, data="synthetic", device="cpu", proxies="synflow")


CLI_FAST = ["--dataset", "synthetic", "--repeat", "1", "--batch-size", "8", "--quiet", "--no-cache"]


def test_cli_score_adds_a_column_per_proxy(capsys) -> None:
    import json

    from teg_plugin.cli import main

    code = main(["score", "--arch", RESNET, DISCONNECTED, "--proxies", "params,synflow", "--format", "json", *CLI_FAST])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out, parse_constant=lambda token: pytest.fail(f"non-JSON {token}"))
    assert rows[0]["params"] == pytest.approx(0.073306 + 2 * 0.24304, abs=1e-9) and rows[0]["synflow"] > 0
    assert rows[1]["synflow"] is None  # flagged: no path
    code = main(["score", "--arch", RESNET, "--proxies", "params", "--format", "csv", *CLI_FAST])
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert header.index("kr_mse") < header.index("params") < header.index("bad")
    assert main(["score", "--arch", RESNET, "--proxies", "synflow,naswot", *CLI_FAST]) == 2
    assert "unknown proxy 'naswot'" in capsys.readouterr().err


def test_cli_bench_correlation_checks_computed_proxies(capsys, shared_data) -> None:
    import json

    from teg_plugin.cli import main

    code = main(
        [
            "bench",
            "correlation",
            "--truth",
            str(shared_data / "nb201" / "nb201_ground_truth.csv"),
            "--naslib",
            str(shared_data / "automl_NASLib" / "zc_nasbench201_725archs.csv"),
            "--sample",
            "6",
            "--bootstrap",
            "0",
            "--format",
            "json",
            "--compute-proxies",
            "params,flops",
            *CLI_FAST,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    checks = {c["proxy"]: c for c in result["proxy_checks"]}
    for name, column in (("params", "params_mb"), ("flops", "flops_m")):
        assert checks[name]["published"] == column and checks[name]["n"] == 6
        assert checks[name]["spearman_vs_published"] == pytest.approx(1.0)
        assert checks[name]["kendall_tau_difference"] == pytest.approx(0.0)
        assert checks[name]["published_seconds"] > 0
    rows = {r["predictor"]: r for r in result["rows"]}
    assert rows["params (computed)"]["kendall_tau"] == pytest.approx(rows["params_mb"]["kendall_tau"])


def test_cached_values_are_shared_across_teg_settings_that_leave_the_batch_alone(make_scorer, small_config) -> None:
    from dataclasses import replace

    cache = ScoreCache("sqlite://")
    first = ProxyScorer(make_scorer(cache=cache), shape=(4, 1))
    first.values([RESNET], "nwot")
    # more repeats and other crops for E: the proxies' batch (first training batch) is the same
    other = ProxyScorer(
        make_scorer(cache=cache, config=replace(small_config, repeat=2, regions_batches=3)), shape=(4, 1)
    )
    other.values([RESNET], "nwot")
    assert other.n_measured == 0
    # another seed draws another batch and other weights
    reseeded = ProxyScorer(make_scorer(cache=cache, config=replace(small_config, seed=7)), shape=(4, 1))
    reseeded.values([RESNET], "nwot")
    assert reseeded.n_measured == 1
