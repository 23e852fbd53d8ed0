"""Computing proxies of one architecture: its network, its inputs, and a flagged result per proxy."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from teg_plugin.config import TEGConfig
from teg_plugin.indicators.init import init_network, stable_seed
from teg_plugin.indicators.measure import _single_threaded_on_cpu
from teg_plugin.inputs import ScoringInputs
from teg_plugin.proxies._base import NonFiniteProxy, ProxyInputs
from teg_plugin.proxies.registry import get_proxy
from teg_plugin.spaces import Mask, SearchSpace

#: Per space, the network the proxies are computed on, as ``(width C, cells per stage N)``: the one
#: NAS-Bench-Suite-Zero computes them on (NB201's own, C=16, N=5). Other spaces use the network of
#: their TEG protocol (``config.width``, ``config.cells_per_stage``) unless told otherwise.
BENCHMARK_NETWORKS: dict[str, tuple[int, int]] = {"nas-bench-201": (16, 5)}

#: Images of the scorer's (first) training batch the data-dependent proxies see: NAS-Bench-Suite-Zero's
#: batch (its published jacov, at most -n for n images, is about -32).
PROXY_BATCH_SIZE = 32

#: How the proxies' network is initialised (name-seeded, :func:`~teg_plugin.indicators.init.init_network`):
#: PyTorch's default scheme, which NAS-Bench-Suite-Zero's published values were computed with (its
#: l2_norm, a function of the initialisation alone, matches this scheme's to 0.1%, not Kaiming normal's).
PROXY_INIT = "torch-default"

#: Bump when a proxy's definition changes, so values cached before are not reused.
PROXY_VERSION = 1


@dataclass(frozen=True)
class ProxyResult:
    """One proxy's value for one architecture.

    Args:
        value: the proxy (higher predicts better); NaN when ``bad``.
        bad: the proxy is undefined on this network (NaN/inf on the way, a singular kernel, ...).
        reason: why it is bad, for humans.
        seconds: wall time it took (0 when it came from a cache).
    """

    value: float
    bad: bool = False
    reason: str | None = None
    seconds: float = 0.0

    @classmethod
    def flagged(cls, reason: str, seconds: float = 0.0) -> ProxyResult:
        return cls(math.nan, True, reason, seconds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``value`` (``None`` when bad), ``bad``, ``reason``, ``seconds``."""
        return {
            "value": None if self.bad else self.value,
            "bad": self.bad,
            "reason": self.reason,
            "seconds": self.seconds,
        }


def network_shape(space: SearchSpace, config: TEGConfig) -> tuple[int, int]:
    """``(width, cells_per_stage)`` of the network the proxies use in ``space`` (see :data:`BENCHMARK_NETWORKS`)."""
    if space.name in BENCHMARK_NETWORKS:
        return BENCHMARK_NETWORKS[space.name]
    config = config.resolved(space)
    assert config.width is not None
    return config.width, config.cells_per_stage


def proxy_inputs(
    space: SearchSpace,
    mask: Mask,
    inputs: ScoringInputs,
    config: TEGConfig,
    device: torch.device,
    *,
    shape: tuple[int, int] | None = None,
    batch_size: int = PROXY_BATCH_SIZE,
    init: str = PROXY_INIT,
) -> ProxyInputs:
    """What the proxies of architecture ``mask`` compute on: its network at ``shape`` (default:
    :func:`network_shape`), initialised name-seeded by ``config.seed`` with scheme ``init``, and the
    first ``batch_size`` images of the scorer's first training batch."""
    width, cells = shape or network_shape(space, config)
    seed = stable_seed(config.seed, "zero-cost")

    def build() -> nn.Module:
        net = space.build_proxy_network(
            mask, width=width, cells_per_stage=cells, num_classes=inputs.num_classes, in_channels=inputs.in_channels
        )
        if not isinstance(net, nn.Module):
            raise TypeError(f"the space's network builder returned a {type(net).__name__}, not an nn.Module")
        return net

    template: list[nn.Module] = []

    def network() -> nn.Module:
        if not template:  # built and initialised once per architecture, copied for each proxy
            template.append(init_network(build(), seed, init).to(device).train())
        return copy.deepcopy(template[0])

    def meta_network() -> nn.Module:
        try:
            with torch.device("meta"):
                return build()
        except (RuntimeError, NotImplementedError):  # a builder that computes on its weights: a real copy
            return network()

    batch = inputs.repeats[0]
    n = min(batch_size, batch.train_x.shape[0])
    return ProxyInputs(
        network,
        meta_network,
        batch.train_x[:n].to(device),
        batch.train_y[:n].to(device),
        inputs.num_classes,
        seed,
        device,
    )


def measure_proxies(names: Sequence[str], inputs: ProxyInputs) -> dict[str, ProxyResult]:
    """Each proxy of ``names`` on ``inputs``, timed one by one; a proxy undefined on this network
    (non-finite values, a singular kernel) gives a flagged result instead of an error.

    On the CPU they run with one intra-op thread, as TEG's tasks do: on the shared 2-core machine
    (load average 6-9), PyTorch's two threads made them 3-12x slower than one (grasp 17.8 s against
    1.5 s per architecture, median of 6; docs/proxies.md).

    Raises:
        ValueError: an unknown proxy name, or a network that fails on the inputs (PyTorch's error
            becomes one naming the input shape).
    """
    proxies = [get_proxy(name) for name in names]
    results: dict[str, ProxyResult] = {}
    with _single_threaded_on_cpu(inputs.device):
        for proxy in proxies:
            results[proxy.name] = _timed(proxy.compute, inputs, proxy.name)
    return results


def _timed(compute: Callable[[ProxyInputs], float], inputs: ProxyInputs, name: str) -> ProxyResult:
    start = time.perf_counter()
    try:
        value = compute(inputs)
    except NonFiniteProxy as err:
        return ProxyResult.flagged(f"{name}: {err}", time.perf_counter() - start)
    except torch.linalg.LinAlgError as err:  # e.g. an eigensolver that does not converge on NaN input
        return ProxyResult.flagged(f"{name}: {str(err).strip().splitlines()[0]}", time.perf_counter() - start)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:  # PyTorch's, from inside the network
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"proxy {name}: the network failed on images of shape {tuple(inputs.x.shape)} ({first_line})"
        ) from err
    seconds = time.perf_counter() - start
    if not math.isfinite(value):
        return ProxyResult.flagged(f"{name} is {value}", seconds)
    return ProxyResult(float(value), seconds=seconds)
