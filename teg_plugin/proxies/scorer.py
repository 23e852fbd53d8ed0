"""``ProxyScorer``: zero-cost proxies of a space's architectures, behind the same inputs and cache as TEG."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING

from teg_plugin._progress import progress_bar
from teg_plugin.cache import CacheKey
from teg_plugin.proxies.measure import (
    PROXY_BATCH_SIZE,
    PROXY_INIT,
    PROXY_VERSION,
    ProxyResult,
    measure_proxies,
    network_shape,
    proxy_inputs,
)
from teg_plugin.proxies.registry import parse_proxy_names

if TYPE_CHECKING:
    from teg_plugin.scorer import TEGScorer


class ProxyScorer:
    """Computes zero-cost proxies with a :class:`~teg_plugin.scorer.TEGScorer`'s space, data, fixed
    inputs, seed, device and score cache.

    Each (architecture, proxy) pair is computed once and cached on its own, so asking for one more
    proxy later computes only that one; the cache key holds the inputs' hash, the seed, the network's
    shape and initialisation, not the TEG-only settings (repeats, E's crops). Unlike TEG scores, proxies are computed on the architecture
    itself, not on its isomorphism class's representative: ``params`` and ``flops`` count every op,
    reachable or not, as NAS-Bench-201 and NAS-Bench-Suite-Zero do.

    Args:
        scorer: the TEG scorer whose space, data, inputs, device and cache are shared.
        shape: ``(width, cells_per_stage)`` of the network; default: the space's benchmark network
            (NB201: C=16, N=5, see :data:`~teg_plugin.proxies.measure.BENCHMARK_NETWORKS`).
        batch_size: images of the scorer's first training batch the data-dependent proxies see
            (NAS-Bench-Suite-Zero's 32).
        init: the initialisation scheme of the network (name-seeded by the scorer's seed; default:
            PyTorch's, as NAS-Bench-Suite-Zero; see :data:`~teg_plugin.proxies.measure.PROXY_INIT`).

    Example:
        >>> from teg_plugin.config import TEGConfig
        >>> from teg_plugin.scorer import TEGScorer
        >>> scorer = TEGScorer("nas-bench-201", data="synthetic", config=TEGConfig(repeat=1, batch_size=8), device="cpu")
        >>> proxies = ProxyScorer(scorer, shape=(4, 1))
        >>> values = proxies.values(["|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"],
        ...                         ["params", "synflow"])[0]
        >>> sorted(values), values["synflow"] > 0
        (['params', 'synflow'], True)
    """

    def __init__(
        self,
        scorer: TEGScorer,
        *,
        shape: tuple[int, int] | None = None,
        batch_size: int = PROXY_BATCH_SIZE,
        init: str = PROXY_INIT,
    ) -> None:
        from teg_plugin.config import INIT_SCHEMES

        if init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {', '.join(INIT_SCHEMES)}, got {init!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError(f"batch_size must be an int >= 2 (BatchNorm needs two images), got {batch_size!r}")
        self.scorer = scorer
        self.shape = shape or network_shape(scorer.space, scorer.config)
        self.batch_size = batch_size
        self.init = init
        self._fingerprint = self._inputs_fingerprint()
        self._memo: dict[tuple[str, str], ProxyResult] = {}
        #: How many (architecture, proxy) values this scorer computed (cache misses).
        self.n_measured = 0

    def measure(
        self, archs: Iterable[Hashable | str | dict], names: str | Iterable[str], *, progress: bool = False
    ) -> list[dict[str, ProxyResult]]:
        """Per architecture (as :meth:`TEGScorer.score` takes them), in order, the result of each
        proxy of ``names`` (``"synflow,nwot"`` or a list), in the order asked.

        Raises:
            ValueError: an unknown proxy name, or an architecture the space cannot parse.
        """
        names = parse_proxy_names(names)
        archs = self.scorer._as_archs(archs)
        space = self.scorer.space
        texts = [space.format(a) for a in archs]
        by_text = dict(zip(texts, archs))
        wanted = [(t, n) for t in by_text for n in names if (t, n) not in self._memo]
        cache = self.scorer.cache
        if wanted and cache is not None:
            found = cache.get_proxy_values([(self._key(t), n) for t, n in wanted])
            for (key, name), row in found.items():
                self._memo[(key.arch, name)] = ProxyResult(math.nan if row.bad else row.value, row.bad, row.reason)
            wanted = [pair for pair in wanted if pair not in self._memo]
        todo: dict[str, list[str]] = {}
        for text, name in wanted:
            todo.setdefault(text, []).append(name)
        bar = progress_bar(len(todo), progress, "proxies", "arch")
        try:
            for text, missing in todo.items():
                inputs = proxy_inputs(
                    space,
                    space.mask_of(by_text[text]),
                    self.scorer.inputs,
                    self.scorer.config,
                    self.scorer.device,
                    shape=self.shape,
                    batch_size=self.batch_size,
                    init=self.init,
                )
                for name, result in measure_proxies(missing, inputs).items():
                    self._memo[(text, name)] = result
                    self.n_measured += 1
                    if cache is not None:
                        cache.put_proxy_value(
                            self._key(text), name, result.value, result.bad, result.reason, result.seconds
                        )
                if bar is not None:
                    bar.update()
        finally:
            if bar is not None:
                bar.close()
        return [{n: self._memo[(t, n)] for n in names} for t in texts]

    def values(
        self, archs: Iterable[Hashable | str | dict], names: str | Iterable[str], *, progress: bool = False
    ) -> list[dict[str, float]]:
        """As :meth:`measure`, the values only (NaN where a proxy is flagged bad): the shape rank
        aggregation over proxies takes."""
        return [{n: r.value for n, r in row.items()} for row in self.measure(archs, names, progress=progress)]

    def _inputs_fingerprint(self) -> str:
        """What the values depend on besides the architecture: the proxies' version, the network's
        shape, its initialisation and seed, the class count, and the very images and labels (hashed),
        so values cached under other TEG settings (repeats, crops for E) are reused when these agree."""
        batch = self.scorer.inputs.repeats[0]
        n = min(self.batch_size, batch.train_x.shape[0])
        digest = hashlib.sha256()
        digest.update(
            json.dumps(
                [PROXY_VERSION, list(self.shape), self.init, self.scorer.config.seed, self.scorer.inputs.num_classes, n]
            ).encode()
        )
        for tensor in (batch.train_x[:n], batch.train_y[:n]):
            digest.update(str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return "zc:" + digest.hexdigest()[:32]

    def _key(self, text: str) -> CacheKey:
        return CacheKey(self.scorer.space.name, text, self._fingerprint)
