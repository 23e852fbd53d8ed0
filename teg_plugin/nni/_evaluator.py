"""A zero-cost NNI evaluator: it scores a frozen model with T/E/G instead of training it."""

from __future__ import annotations

import json
import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nni
from nni.nas.evaluator import Evaluator
from torch import nn

from teg_plugin.config import TEGConfig
from teg_plugin.nni._metrics import RESULT_LOG, log_and_rank, rank_default, teg_metrics, trial_experiment_dir
from teg_plugin.scores import TEGScore
from teg_plugin.spaces import SearchSpace, get_space


@dataclass
class _Shared:
    """One scorer per distinct evaluator setting in a process, and the results reported so far."""

    scorer: Any
    history: list[TEGScore] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


_SHARED: dict[str, _Shared] = {}
_SHARED_LOCK = threading.Lock()


@nni.trace
class TEGEvaluator(Evaluator):
    """Scores each model NNI submits with the TEG indicators and reports them as its final result.

    The architecture is read from the NNI sample of the model being evaluated (labels = the search
    space's choices, e.g. :class:`~teg_plugin.nni.NB201ModelSpace`), or, outside NNI, from a frozen
    :class:`~teg_plugin.spaces.nb201.NB201Network` itself. It is scored by a
    :class:`~teg_plugin.scorer.TEGScorer`, so isomorphic cells share one measurement and a repeated
    architecture costs nothing; ``cache`` makes scores persist across runs and processes.

    The final result (``nni.report_final_result``) is the dict of
    :func:`~teg_plugin.nni.teg_metrics`: ``ntk_cond``, ``regions``, ``kr_mse``, ``bad`` and
    ``default``, minus the normalised TEG rank-sum among every result reported so far (NNI maximises
    ``default``; see :mod:`teg_plugin.nni._metrics`): in the sequential engine, the results of
    evaluators of the same setting in this process; in a trial process of a training-service engine,
    the experiment's trials so far (a result log in the experiment's folder, ``teg_results.jsonl``).

    Every argument is a plain value so that NNI can serialise the evaluator (``@nni.trace``).

    Args:
        space: the search space's name (``"nas-bench-201"``).
        data: dataset name for :func:`~teg_plugin.data.load_data` (``"embedded"``, ``"cifar10"``,
            ``"synthetic"``...), or ``None`` for CIFAR-10 if found under ``data_root``, else the
            embedded sample.
        config: :class:`~teg_plugin.config.TEGConfig` fields as a dict (or a ``TEGConfig``);
            ``None`` = the paper's protocol.
        data_root: where dataset files live.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        cache: a score-cache path or SQLAlchemy URL, or ``None`` for an in-process cache only.

    Example:
        >>> from teg_plugin.nni import NB201ModelSpace, sample_from_arch
        >>> evaluator = TEGEvaluator(data="synthetic", device="cpu",
        ...                          config={"repeat": 1, "batch_size": 8, "regions_batch_size": 64, "regions_batches": 2})
        >>> model = NB201ModelSpace(width=4, cells_per_stage=1).freeze(sample_from_arch(
        ...     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"))
        >>> result = evaluator.evaluate(model)
        >>> result["bad"], result["regions"] > 1
        (False, True)
    """

    def __init__(
        self,
        space: str = "nas-bench-201",
        data: str | None = None,
        config: Mapping[str, Any] | TEGConfig | None = None,
        *,
        data_root: str | None = None,
        device: str = "auto",
        cache: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(config, TEGConfig):
            config = config.to_dict()
        self.space_name = str(space)
        self.data = data
        self.config = dict(config) if config is not None else None
        self.data_root = None if data_root is None else str(data_root)
        self.device = device
        self.cache = None if cache is None else str(cache)
        self._space: SearchSpace = get_space(self.space_name)
        # Fail early on a bad config, not in the first trial.
        TEGConfig.from_dict(self.config or {})

    def extra_repr(self) -> str:
        return f"space={self.space_name!r}, data={self.data!r}, config={self.config!r}, device={self.device!r}"

    @property
    def space(self) -> SearchSpace:
        """The search space whose architectures are scored."""
        return self._space

    @property
    def _key(self) -> str:
        return json.dumps(
            [self.space_name, self.data, self.config, self.data_root, self.device, self.cache], sort_keys=True
        )

    def _shared(self) -> _Shared:
        key = self._key
        with _SHARED_LOCK:
            shared = _SHARED.get(key)
            if shared is None:
                from teg_plugin.scorer import TEGScorer

                scorer = TEGScorer(
                    self._space,
                    self.data,
                    TEGConfig.for_space(self._space, **(self.config or {})),
                    data_root=self.data_root,
                    device=self.device,
                    cache=self.cache,
                )
                shared = _SHARED[key] = _Shared(scorer)
            return shared

    @property
    def scorer(self) -> Any:
        """The :class:`~teg_plugin.scorer.TEGScorer` (one per setting and process, built on first use)."""
        return self._shared().scorer

    def arch_of(self, model: Any) -> Hashable:
        """The architecture ``model`` was frozen from (see the class docs)."""
        current = nni.get_current_parameter()
        sample = getattr(current, "sample", None)
        if isinstance(sample, Mapping):
            names = self._space.choices()
            missing = [name for name in names if name not in sample]
            if missing:
                raise ValueError(
                    f"the NNI sample {dict(sample)} lacks the {self._space.name} choices {missing}: TEGEvaluator "
                    "needs a model space whose labels are the space's choices (e.g. teg_plugin.nni.NB201ModelSpace)"
                )
            return self._space.from_params({name: sample[name] for name in names})
        cells = getattr(model, "cells", None)
        if isinstance(cells, nn.Sequential) and len(cells) and hasattr(cells[0], "mask"):
            return self._space.arch_from_mask(cells[0].mask)
        raise TypeError(
            f"cannot tell which {self._space.name} architecture {type(model).__name__} is: evaluate models of "
            "teg_plugin.nni.NB201ModelSpace inside NNI, or pass a frozen NB201Network"
        )

    def evaluate(self, model: Any) -> dict[str, Any]:
        """Score ``model`` and report (inside NNI) and return its final-result dict."""
        arch = self.arch_of(model)
        shared = self._shared()
        score = shared.scorer.score(arch)
        experiment_dir = trial_experiment_dir()
        if experiment_dir is not None:
            # A trial process of a training-service engine: rank among the experiment's trials so far.
            default = log_and_rank(experiment_dir / RESULT_LOG, score, arch=self._space.format(arch))
        else:
            with shared.lock:
                default = rank_default(score, shared.history)
                shared.history.append(score)
        metrics = teg_metrics(score, default)
        if nni.get_current_parameter() is not None:
            nni.report_final_result(metrics)
        return metrics
