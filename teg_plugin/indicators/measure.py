"""Measure T, E and G of one (super)network mask: the fast path used by the scorer.

Faster than the plain definition (:mod:`teg_plugin.reference.plain`) but equal to it:

* only the active options are built and run (single path), instead of a masked supernet;
* the training-batch Jacobian is computed once: G's is a column slice of T's;
* linear regions are counted with a hash-based ``unique`` instead of O(N²) pattern comparisons;
* on the CPU, the independent Jacobians (training and held-out batch of each repeat) and region
  counts run in parallel threads with one intra-op thread each: for such thin networks PyTorch's
  own intra-op parallelism mostly spins (measured: 5x the CPU time of this scheme on a loaded
  2-core machine). Each task, and the float64 kernel algebra after them, runs single-threaded, so
  scores are bit-identical whatever the thread count (``torch.set_num_threads``, ``OMP_NUM_THREADS``). (Channels-last layout was faster still, but PyTorch 2.14's CPU channels-last convolution
  backward gave a wrong first Jacobian row — 2e-2 relative error — so it is not used.)
"""

from __future__ import annotations

import copy
import functools
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from teg_plugin.config import FROZEN_BN, TEGConfig
from teg_plugin.indicators.frozen_bn import frozen_bn_jacobian
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

T = TypeVar("T")


@dataclass(frozen=True)
class CandidateNetworks:
    """How to build the networks of one candidate, fresh for every repeat.

    Args:
        proxy: a new proxy network (T and G; returns logits ``(batch, classes)``). It is initialised
            with the repeat's name-seeded weights when ``initialise`` holds, and put in train mode.
        thin: a new thin network for E (inputs: the scorer's crops, ``(batch, regions_width, crop,
            crop)``); when it returns ``None``, E's patterns are counted on (a fresh copy of) the
            proxy network itself, over the repeat's training and held-out images.
        generalization_parameter: which proxy-network weights enter G's Jacobian.
        initialise: re-initialise the networks (name-seeded, by ``config.init``); ``False`` keeps their weights.
    """

    proxy: Callable[[], nn.Module]
    thin: Callable[[], nn.Module | None]
    generalization_parameter: Callable[[str], bool]
    initialise: bool = True


def space_networks(space: SearchSpace, mask: Mask, inputs: ScoringInputs, config: TEGConfig) -> CandidateNetworks:
    """The networks of supernet ``mask`` of ``space`` under the protocol of ``config``."""
    config = config.resolved(space)
    width = config.resolved_width(space)

    def proxy() -> nn.Module:
        return space.build_proxy_network(
            mask,
            width=width,
            cells_per_stage=config.cells_per_stage,
            num_classes=inputs.num_classes,
            in_channels=inputs.in_channels,
        )

    def thin() -> nn.Module | None:
        return space.build_thin_network(mask, width=config.regions_width, num_classes=inputs.num_classes)

    return CandidateNetworks(proxy, thin, space.generalization_parameter)


def measure_mask(
    space: SearchSpace, mask: Mask, inputs: ScoringInputs, config: TEGConfig, device: torch.device
) -> TEGScore:
    """The TEG indicators of the network of ``mask`` (an architecture or a pruned supernet).

    Never raises for a bad network: NaN/inf or an undefined indicator gives a ``bad`` score.
    """
    return measure_networks(space_networks(space, mask, inputs, config), inputs, config, device)


def measure_networks(
    networks: CandidateNetworks, inputs: ScoringInputs, config: TEGConfig, device: torch.device
) -> TEGScore:
    """The TEG indicators of one candidate's networks (see :class:`CandidateNetworks`): the mean of
    :func:`measure_repeats`.

    Never raises for a bad network: NaN/inf or an undefined indicator gives a ``bad`` score. A
    network that does not fit the protocol (wrong logits shape, no ReLUs) raises ``ValueError``.
    """
    start = time.perf_counter()
    repeats = measure_repeats(networks, inputs, config, device)
    return TEGScore.mean_of(repeats, seconds=time.perf_counter() - start)


def measure_repeats(
    networks: CandidateNetworks, inputs: ScoringInputs, config: TEGConfig, device: torch.device
) -> tuple[TEGScore, ...]:
    """One score per repeat (initialisation and inputs) of one candidate's networks, in repeat order.

    A repeat's ``seconds`` is the wall time of all repeats divided by their number (they run
    together). NaN/inf anywhere flags every repeat ``bad``.

    Raises:
        ValueError: if a network fails on the protocol's inputs (PyTorch's error, e.g. a shape
            mismatch in a user's network, becomes one naming the shapes the protocol feeds).
        TypeError: if a builder returns something other than an ``nn.Module``.
    """
    start = time.perf_counter()
    try:
        repeats = [_ProxyRepeat.build(networks, inputs, config, r, device) for r in range(config.repeat)]
        # Each repeat's two Jacobians, then each repeat's number of regions.
        tasks: list[Callable[[], torch.Tensor | float]] = []
        for rep in repeats:
            tasks += [rep.train_jacobian, rep.val_jacobian]
        tasks += [
            functools.partial(_regions, networks, config, inputs.repeats[r], r, device) for r in range(config.repeat)
        ]
        results = _run_tasks(tasks, device)
    except NonFiniteError as err:
        flagged = TEGScore.flagged(str(err), (time.perf_counter() - start) / config.repeat)
        return (flagged,) * config.repeat
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:  # PyTorch's, from inside a network's forward or backward
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        crop = config.regions_crop
        raise ValueError(
            f"the network or its thin network failed on the protocol's inputs ({first_line}). The network takes "
            f"images of shape (batch, {inputs.in_channels}, H, W) and returns logits (batch, {inputs.num_classes}); "
            f"the thin network takes crops of shape (batch, {config.regions_width}, {crop}, {crop})"
        ) from err
    seconds = (time.perf_counter() - start) / config.repeat
    scores = []
    for r, rep in enumerate(repeats):
        j_train, j_val, regions = results[2 * r], results[2 * r + 1], results[2 * config.repeat + r]
        assert isinstance(j_train, torch.Tensor) and isinstance(j_val, torch.Tensor) and isinstance(regions, float)
        with _single_threaded_on_cpu(device):  # float64 products summed in one order, whatever the thread count
            kappa, mse = rep.indicators(j_train, j_val)
        reasons = []
        if math.isnan(kappa):
            reasons.append(_UNDEFINED_KAPPA)
        if math.isnan(mse):
            reasons.append(_SINGULAR_KERNEL)
        scores.append(
            TEGScore(kappa, regions, mse, bad=bool(reasons), reason="; ".join(reasons) or None, seconds=seconds)
        )
    return tuple(scores)


_UNDEFINED_KAPPA = "NTK condition number undefined (smallest eigenvalue <= 0)"
_SINGULAR_KERNEL = "singular training kernel in NTK kernel regression"


@dataclass
class _ProxyRepeat:
    """One repeat's proxy network, its inputs, and which Jacobian columns belong to G.

    Under ``ntk="frozen-bn"`` the held-out Jacobian is taken on a copy of the network
    (``val_net``): that path switches the BatchNorms of the network it runs on, and the two
    Jacobians may run in parallel threads.
    """

    net: nn.Module
    val_net: nn.Module
    batch: RepeatInputs
    t_names: list[str]
    g_names: list[str]
    g_columns: torch.Tensor
    ntk: str
    singular_rtol: float

    @classmethod
    def build(
        cls, networks: CandidateNetworks, inputs: ScoringInputs, config: TEGConfig, repeat: int, device: torch.device
    ) -> _ProxyRepeat:
        net = _prepare(
            networks.proxy(), networks.initialise, stable_seed(config.seed, "proxy", repeat), config.init, device
        )
        batch = inputs.repeats[repeat].to(device)
        named = select_parameters(net, is_weight)
        # G's parameters are a subset of T's: its training-batch Jacobian is a column slice of T's.
        columns, offset = [], 0
        for name, param in named:
            if networks.generalization_parameter(name):
                columns.append(torch.arange(offset, offset + param.numel(), device=device))
            offset += param.numel()
        if not columns:
            raise ValueError("no proxy-network weight is selected for G (generalization_parameter)")
        g_names = [name for name, _ in named if networks.generalization_parameter(name)]
        val_net = copy.deepcopy(net) if config.ntk == FROZEN_BN else net
        return cls(
            net, val_net, batch, [n for n, _ in named], g_names, torch.cat(columns), config.ntk, config.singular_rtol
        )

    def train_jacobian(self) -> torch.Tensor:
        return self._jacobian(self.net, self.batch.train_x, self.t_names)

    def val_jacobian(self) -> torch.Tensor:
        return self._jacobian(self.val_net, self.batch.val_x, self.g_names)

    def _jacobian(self, net: nn.Module, x: torch.Tensor, names: list[str]) -> torch.Tensor:
        if self.ntk == FROZEN_BN:
            return frozen_bn_jacobian(net, x, names)
        params = dict(net.named_parameters())
        return ntk_jacobian(net, x, [params[name] for name in names])

    def indicators(self, j_train: torch.Tensor, j_val: torch.Tensor) -> tuple[float, float]:
        kappa = condition_number(gram(j_train))
        j_train_g = j_train[:, self.g_columns]
        mse = kernel_regression_mse(
            gram(j_train_g), gram(j_val, j_train_g), self.batch.y_train, self.batch.y_val, self.singular_rtol
        )
        return kappa, mse


def _prepare(net: nn.Module, initialise: bool, seed: int, scheme: str, device: torch.device) -> nn.Module:
    if not isinstance(net, nn.Module):
        raise TypeError(f"a network builder returned a {type(net).__name__}, not an nn.Module")
    if initialise:
        init_network(net, seed, scheme)
    return net.to(device).train()


def _regions(
    networks: CandidateNetworks, config: TEGConfig, batch: RepeatInputs, repeat: int, device: torch.device
) -> float:
    thin = networks.thin()
    if thin is None:
        # No thin network: a fresh copy of the proxy network (hooks on the one whose Jacobians other
        # threads compute would record their passes too), with its weights, on the repeat's images.
        net = _prepare(
            networks.proxy(), networks.initialise, stable_seed(config.seed, "proxy", repeat), config.init, device
        )
        patterns = activation_patterns(net, (batch.train_x.to(device), batch.val_x.to(device)))
    else:
        thin = _prepare(thin, networks.initialise, stable_seed(config.seed, "thin", repeat), config.init, device)
        patterns = activation_patterns(thin, (b.to(device) for b in batch.region_batches))
    return float(count_distinct_patterns(patterns))


@contextmanager
def _single_threaded_on_cpu(device: torch.device) -> Iterator[None]:
    """One intra-op thread while active, on the CPU (elsewhere nothing changes)."""
    if device.type != "cpu":
        yield
        return
    with _intra_op_threads(1):
        yield


def _run_tasks(tasks: list[Callable[[], T]], device: torch.device) -> list[T]:
    """Run independent tasks; on the CPU in parallel threads, each with one intra-op thread."""
    threads = _threads_saved if _threads_users else torch.get_num_threads()
    if device.type != "cpu" or threads <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with _intra_op_threads(1):
        pool = ThreadPoolExecutor(max_workers=min(threads, len(tasks)))
        try:
            futures = [pool.submit(task) for task in tasks]
            return [f.result() for f in futures]
        finally:
            # After a task's error or Ctrl-C, drop the tasks not started: waiting for every queued
            # Jacobian held an interrupt up for seconds. Running tasks still end before the return.
            pool.shutdown(wait=True, cancel_futures=True)


_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 0


@contextmanager
def _intra_op_threads(n: int) -> Iterator[None]:
    """Set PyTorch's (process-wide) intra-op thread count while any caller is inside; restore after."""
    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(n)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)
