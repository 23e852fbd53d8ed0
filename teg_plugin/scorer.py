"""The TEG scorer: scores architectures of a space on fixed inputs, with a score cache, and ranks them."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from teg_plugin._progress import progress_bar
from teg_plugin.cache import CacheKey, ScoreCache
from teg_plugin.config import TEGConfig
from teg_plugin.data import ImageData, load_data
from teg_plugin.indicators.measure import measure_mask, measure_repeats, space_networks
from teg_plugin.inputs import ScoringInputs
from teg_plugin.scores import COMPLEXITY, RankRule, TEGScore, final_ranks, rank_sums
from teg_plugin.spaces import Mask, SearchSpace, get_space

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without a GPU is a clear error."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be a str or torch.device ({', '.join(DEVICES)}), got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but PyTorch sees no CUDA GPU; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    return torch.device(name)


@dataclass(frozen=True)
class RankedArch:
    """One architecture's place in a ranking."""

    arch: Hashable
    text: str
    index: int | None
    score: TEGScore
    rank_sum: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``arch``, ``index``, the indicators, ``bad``, ``rank``, ``rank_sum``, ``seconds``."""
        out: dict[str, Any] = {"arch": self.text, "index": self.index}
        out.update(self.score.to_dict())
        out["rank_sum"] = self.rank_sum if self.rank_sum != float("inf") else None
        out["rank"] = self.rank
        return out


class TEGScorer:
    """Scores architectures of one space with TEG indicators, always on the same inputs.

    Isomorphic architectures share one score: the class representative
    (:meth:`SearchSpace.canonical`) is what gets measured, so an architecture's score never depends
    on which member of its class was seen first, cache or no cache.

    Args:
        space: a :class:`SearchSpace` or its name (``"nas-bench-201"``).
        data: an :class:`ImageData` pool, a dataset name or image-folder path for
            :func:`~teg_plugin.data.load_data`, or ``None`` for the default (CIFAR-10 if found under ``data_root``, else the embedded sample).
        config: the protocol (:class:`TEGConfig`, or a dict of its fields); default: the paper's for
            this space. Settings left ``None`` (``width``) take this space's value (:meth:`TEGConfig.resolved`).
        data_root: where to look for the dataset files.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        cache: a :class:`ScoreCache`, a SQLAlchemy URL or file path for one, or ``None`` for an
            in-process cache only.

    Example:
        >>> scorer = TEGScorer("nas-bench-201", data="synthetic", config=TEGConfig(repeat=1, batch_size=8,
        ...                    regions_batch_size=50), device="cpu")
        >>> score = scorer.score(scorer.space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        ...                                         "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"))
        >>> score.bad, score.regions > 1
        (False, True)
    """

    def __init__(
        self,
        space: SearchSpace | str = "nas-bench-201",
        data: ImageData | str | None = None,
        config: TEGConfig | None = None,
        *,
        data_root: str | os.PathLike[str] | None = None,
        device: str | torch.device = "auto",
        cache: ScoreCache | str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(space, (SearchSpace, str)):
            raise TypeError(f"space must be a SearchSpace or a space name, got {space!r}")
        if not isinstance(config, (TEGConfig, Mapping, type(None))):
            raise TypeError(f"config must be a TEGConfig, a dict of its fields or None, got {config!r}")
        if not isinstance(cache, (ScoreCache, str, os.PathLike, type(None))):
            raise TypeError(f"cache must be a ScoreCache, a SQLAlchemy URL, a file path or None, got {cache!r}")
        self.space = get_space(space) if isinstance(space, str) else space
        if not isinstance(data, (ImageData, str, os.PathLike, type(None))):
            raise TypeError(
                "data must be an ImageData, a dataset name, an image-folder path or None; got a "
                f"{type(data).__module__}.{type(data).__qualname__} (wrap tensors in teg_plugin.data.ImageData)"
            )
        self.data = data if isinstance(data, ImageData) else load_data(data, data_root)
        if isinstance(config, Mapping):
            config = TEGConfig.from_dict(dict(config))
        self.config = (config or TEGConfig()).resolved(self.space)
        self.device = resolve_device(device)
        self.inputs = ScoringInputs.draw(self.data, self.config)
        self.cache = cache if isinstance(cache, ScoreCache) or cache is None else ScoreCache(cache)
        self._memo: dict[str, TEGScore] = {}
        #: How many architectures or masks this scorer actually measured (cache misses).
        self.n_measured = 0
        #: Show a running count on stderr while supernets are scored (pruning can take minutes).
        self.show_supernet_progress = False
        #: The count that bar runs to, when known (e.g. ``PruningStrategy.planned_evaluations``).
        self.expected_supernet_evaluations: int | None = None
        self._supernet_bar: Any = None  # a tqdm bar (tqdm has no type hints), once shown

    def with_seed(self, seed: int) -> TEGScorer:
        """A scorer of the same space, data, protocol, device and cache whose inputs and initial
        weights are drawn from ``seed`` (an independent run of the protocol, as a new seed in the paper)."""
        return TEGScorer(self.space, self.data, replace(self.config, seed=seed), device=self.device, cache=self.cache)

    @property
    def fingerprint(self) -> str:
        """Identifies the protocol, the data and the drawn inputs (part of every cache key)."""
        return self.inputs.fingerprint

    def score(self, arch: Hashable | str | dict) -> TEGScore:
        """The TEG score of ``arch`` (measured once per isomorphism class, then cached). ``arch`` is
        one of the space's architectures, its text form (:meth:`SearchSpace.parse`) or its flat
        choice dict (:meth:`SearchSpace.from_params`)."""
        return self.score_many([arch])[0]

    def score_many(self, archs: Iterable[Hashable | str | dict], *, progress: bool = False) -> list[TEGScore]:
        """Scores of ``archs`` (as :meth:`score` takes them), in order; each isomorphism class is
        measured at most once.

        Args:
            progress: show a progress bar on stderr while measuring.
        """
        archs = self._as_archs(archs)
        representatives = [self.space.canonical(a) for a in archs]
        texts = [self.space.format(r) for r in representatives]
        by_text = dict(zip(texts, representatives))
        given: dict[str, Hashable] = {}  # canonical text -> the first of its class given (the bar shows it)
        for arch, text in zip(archs, texts):
            given.setdefault(text, arch)
        missing = [t for t in by_text if t not in self._memo]
        if missing and self.cache is not None:
            cached = self.cache.get_many([self._key(t) for t in missing])
            for key, score in cached.items():
                self._memo[key.arch] = score
            missing = [t for t in missing if t not in self._memo]
        bar = progress_bar(len(missing), progress, "scoring", "arch")
        try:
            for text in missing:
                if bar is not None:
                    bar.set_postfix_str(self.space.format(given[text]), refresh=False)
                self._memo[text] = self._measure(self.space.mask_of(by_text[text]), text)
                if bar is not None:
                    bar.update()
        finally:
            if bar is not None:
                bar.close()
        return [self._memo[t] for t in texts]

    def _as_archs(self, archs: Iterable[Hashable | str | dict]) -> list[Hashable]:
        if isinstance(archs, (str, dict)):  # one architecture where a collection belongs
            raise TypeError(f"expected a list of architectures, got one {type(archs).__name__} (use score() for one)")
        return [self._as_arch(a) for a in archs]

    def _as_arch(self, arch: Hashable | str | dict) -> Hashable:
        """An architecture given as the space's text form or flat choice dict, as the space's value."""
        if isinstance(arch, str):
            return self.space.parse(arch)
        if isinstance(arch, dict):
            return self.space.from_params(arch)
        return arch

    def score_mask(self, mask: Mask) -> TEGScore:
        """The TEG score of a (partly pruned) supernet; masks are cached like architectures.

        Raises:
            ValueError: ``mask`` has several options on a choice and the space has no supernet.
        """
        self.space.check_buildable(mask)  # before any measurement starts
        text = _mask_text(mask)
        if text not in self._memo:
            cached = self.cache.get(self._key(text)) if self.cache is not None else None
            if cached is None:
                self._measure_mask_repeats(mask, text)
            else:
                self._memo[text] = cached
            self._tick_supernet_progress()
        return self._memo[text]

    def score_mask_repeats(self, mask: Mask) -> tuple[TEGScore, ...]:
        """The score of each repeat of a supernet ``mask`` (see :meth:`score_mask` for their mean).

        TE-NAS's pruning compares a supernet with and without an op repeat by repeat (same
        initialisation and inputs). Cached per repeat; a mask whose mean alone is cached (scored
        by an older version) is measured again.

        Raises:
            ValueError: ``mask`` has several options on a choice and the space has no supernet.
        """
        self.space.check_buildable(mask)  # before any measurement starts
        text = _mask_text(mask)
        texts = [f"r{r}:{text}" for r in range(self.config.repeat)]
        if not all(t in self._memo for t in texts):
            cached = self.cache.get_many([self._key(t) for t in texts]) if self.cache is not None else {}
            if len(cached) == len(texts):
                for key, score in cached.items():
                    self._memo[key.arch] = score
            else:
                self._measure_mask_repeats(mask, text)
            self._tick_supernet_progress()
        return tuple(self._memo[t] for t in texts)

    def _measure_mask_repeats(self, mask: Mask, text: str) -> None:
        """Measure ``mask``; memoise and cache its mean (under ``text``) and each repeat."""
        start = time.perf_counter()
        repeats = measure_repeats(
            space_networks(self.space, mask, self.inputs, self.config), self.inputs, self.config, self.device
        )
        entries = {text: TEGScore.mean_of(repeats, seconds=time.perf_counter() - start)}
        entries.update((f"r{r}:{text}", score) for r, score in enumerate(repeats))
        self.n_measured += 1
        for key_text, score in entries.items():
            self._memo[key_text] = score
            if self.cache is not None:
                self.cache.put(self._key(key_text), score)

    def _tick_supernet_progress(self) -> None:
        if not self.show_supernet_progress:
            return
        if self._supernet_bar is None:
            from tqdm.auto import tqdm

            self._supernet_bar = tqdm(
                total=self.expected_supernet_evaluations,
                desc="supernet evaluations",
                unit="mask",
                file=sys.stderr,
                leave=False,
            )
        self._supernet_bar.update()

    def rank(
        self, archs: Sequence[Hashable], *, rule: RankRule | None = None, progress: bool = False
    ) -> list[RankedArch]:
        """``archs`` (as :meth:`score` takes them) with scores, rank-sums and positions (1 = best), in
        the given order, under ``rule`` (default: the paper's rank-sum). A rule's complexity term is
        :meth:`SearchSpace.complexity`, its zero-cost proxies are computed by :meth:`proxies`."""
        archs = self._as_archs(archs)
        scores = self.score_many(archs, progress=progress)
        extra = None if rule is None else self.extra_values(archs, rule, progress=progress)
        sums = rank_sums(scores, rule, extra)
        positions = final_ranks(scores, rule, extra)
        return [
            RankedArch(a, self.space.format(a), self.space.index(a), s, float(rs), pos)
            for a, s, rs, pos in zip(archs, scores, sums, positions)
        ]

    def extra_values(
        self, archs: Iterable[Hashable | str | dict], rule: RankRule, *, progress: bool = False
    ) -> list[dict[str, float]] | None:
        """Per architecture (as :meth:`score` takes them), the values of ``rule``'s extra terms:
        :func:`~teg_plugin.scores.rank_sums`'s ``extra``, ``None`` when the rule has none. The
        complexity ``params`` is :meth:`SearchSpace.complexity`; the proxies come from
        :meth:`proxies` (cached; NaN where flagged).

        Example:
            >>> scorer = TEGScorer("nas-bench-201", data="synthetic", config=TEGConfig(repeat=1, batch_size=8), device="cpu")
            >>> from teg_plugin.scores import RankRule
            >>> scorer.extra_values([scorer.space.arch_at(0)], RankRule.parse("regions,params"))
            [{'params': 129306.0}]
        """
        if not rule.extra_terms:
            return None
        archs = self._as_archs(archs)
        proxies = self.proxies(archs, rule.proxies, progress=progress) if rule.proxies else [{} for _ in archs]
        return [
            {**({COMPLEXITY: float(self.space.complexity(a))} if rule.complexity else {}), **values}
            for a, values in zip(archs, proxies)
        ]

    def proxies(
        self, archs: Iterable[Hashable | str | dict], names: str | Iterable[str], *, progress: bool = False
    ) -> list[dict[str, float]]:
        """Zero-cost proxies (``"synflow,nwot"`` or a list of names, see :mod:`teg_plugin.proxies`)
        of ``archs`` on this scorer's data, inputs, device and cache: per architecture, in order, a
        dict name -> value (NaN where a proxy is undefined). Each (architecture, proxy) is computed
        once and cached on its own; :class:`~teg_plugin.proxies.ProxyScorer` gives flags, reasons
        and timings, and other network settings."""
        if getattr(self, "_proxy_scorer", None) is None:
            from teg_plugin.proxies import ProxyScorer

            self._proxy_scorer = ProxyScorer(self)
        return self._proxy_scorer.values(archs, names, progress=progress)

    def _key(self, text: str) -> CacheKey:
        return CacheKey(self.space.name, text, self.fingerprint)

    def _measure(self, mask: Mask, text: str) -> TEGScore:
        score = measure_mask(self.space, mask, self.inputs, self.config, self.device)
        self.n_measured += 1
        if self.cache is not None:
            self.cache.put(self._key(text), score)
        return score


def _mask_text(mask: Mask) -> str:
    """A mask's cache text. "mean:": an edge averages its active options (spaces._supernet.edge_mean);
    scores cached under the earlier sum semantics carry no prefix and are not reused."""
    return "mean:" + json.dumps({k: sorted(v) for k, v in sorted(mask.items())}, separators=(",", ":"))
