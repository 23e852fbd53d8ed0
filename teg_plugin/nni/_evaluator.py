"""A zero-cost NNI evaluator: it scores a frozen model with T/E/G instead of training it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nni
from nni.nas.evaluator import Evaluator
from nni.nas.space import ModelStatus
from torch import nn

from teg_plugin.config import TEGConfig
from teg_plugin.nni._hints import model_space_hint
from teg_plugin.nni._user_space import ThinFromSample, load_thin, model_space_name, sample_text
from teg_plugin.nni.metrics import (
    RESULT_LOG,
    log_and_rank,
    proxy_metrics,
    rank_default,
    teg_metrics,
    trial_experiment_dir,
)
from teg_plugin.scores import TEGScore
from teg_plugin.spaces import SearchSpace, get_space


@dataclass
class _Shared:
    """One scorer per distinct evaluator setting in a process, and the results reported so far."""

    scorer: Any
    history: list[TEGScore] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: ``space=None``: (space name, sample text) -> score, and the persistent score cache if any.
    memo: dict[tuple[str, str], TEGScore] = field(default_factory=dict)
    store: Any = None


_SHARED: dict[str, _Shared] = {}
_SHARED_LOCK = threading.Lock()


@nni.trace
class TEGEvaluator(Evaluator):
    """Scores each model NNI submits with the TEG indicators and reports them as its final result.

    Two kinds of model space:

    * **a registered space** (``space="nas-bench-201"``, the default): the architecture is read
      from the NNI sample of the model being evaluated (labels = the space's choices, e.g.
      :class:`~teg_plugin.nni.NB201ModelSpace`), or, outside NNI, from the frozen network itself
      (:meth:`~teg_plugin.spaces.SearchSpace.arch_of_network`: an NB201 network, a DARTS
      evaluation network), and scored by a
      :class:`~teg_plugin.scorer.TEGScorer` on the space's proxy networks, so isomorphic cells share
      one measurement;
    * **any model space** (``space=None``: ``LayerChoice``, ``InputChoice``, ``nni.choice``...): the
      frozen model itself is scored, as built, by a :class:`~teg_plugin.modules.ModuleScorer` (on
      deep copies, re-initialised with the protocol's name-seeded weights; the model is not
      touched; the protocol's ``width`` and ``cells_per_stage`` do not apply). Scores are kept per
      NNI sample, so a repeated sample costs nothing. E is counted on ``thin(sample, width)`` when
      ``thin`` is given, else on the model itself over the T/G images, which saturates for wide
      models (every image its own pattern, so E ranks nothing; a warning says so).

    A repeated architecture costs nothing; ``cache`` makes scores persist across runs and processes
    (keyed, for ``space=None``, by ``name`` and the sample).

    The final result (``nni.report_final_result``) is the dict of
    :func:`~teg_plugin.nni.metrics.teg_metrics`: ``ntk_cond``, ``regions``, ``kr_mse``, ``bad`` and
    ``default``, minus the normalised TEG rank-sum among every result reported so far (NNI maximises
    ``default``; see :mod:`teg_plugin.nni.metrics`): in the sequential engine, the results of
    evaluators of the same setting in this process; in a trial process of a training-service engine,
    the experiment's trials so far (a result log in the experiment's folder, ``teg_results.jsonl``).

    Every argument is a plain value so that NNI can serialise the evaluator (``@nni.trace``).

    Args:
        space: the search space's name (``"nas-bench-201"``), or ``None`` to score the models of
            any model space as they are built.
        data: dataset name for :func:`~teg_plugin.data.load_data` (``"embedded"``, ``"cifar10"``,
            ``"synthetic"``...), or ``None`` for CIFAR-10 if found under ``data_root``, else the
            embedded sample.
        config: :class:`~teg_plugin.config.TEGConfig` fields as a dict (or a ``TEGConfig``);
            ``None`` = the paper's protocol.
        data_root: where dataset files live.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        cache: a score-cache path or SQLAlchemy URL, or ``None`` for an in-process cache only.
        thin: ``space=None`` only: E's thin network, the import path ``"package.module:function"``
            of a function ``(NNI sample dict, width) -> nn.Module`` taking the protocol's crops
            ``(batch, width, 3, 3)`` (a callable works too, but only a path reaches the trial
            processes of a training-service engine).
        proxies: registered spaces only: zero-cost proxies computed too (``"synflow,nwot"``, see
            :mod:`teg_plugin.proxies`), each reported as ``proxy_<name>`` beside the indicators
            (``None`` when flagged); ``default`` stays the TEG rank-based score.
        name: ``space=None`` only: names the model space in cache keys; default
            :func:`~teg_plugin.nni._user_space.model_space_name` of the model space (its class's
            import path and constructor arguments), as :func:`~teg_plugin.nni.space_from_model_space`.

    Example:
        >>> from teg_plugin.nni import NB201ModelSpace, sample_from_arch
        >>> evaluator = TEGEvaluator(data="synthetic", device="cpu",
        ...                          config={"repeat": 1, "batch_size": 8, "regions_batch_size": 64, "regions_batches": 2})
        >>> model = NB201ModelSpace(width=4, cells_per_stage=1).freeze(sample_from_arch(
        ...     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"))
        >>> result = evaluator.evaluate(model)
        >>> result["bad"], result["regions"] > 1
        (False, True)

        Any model, scored as built (here E on the model itself):

        >>> import warnings
        >>> anything = TEGEvaluator(space=None, data="synthetic", device="cpu",
        ...                         config={"repeat": 1, "batch_size": 8, "regions_batch_size": 64,
        ...                                 "regions_batches": 2})
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")  # E saturates on this wide model
        ...     result = anything.evaluate(model)
        >>> sorted(result), result["bad"]
        (['bad', 'default', 'kr_mse', 'ntk_cond', 'regions'], False)
    """

    def __init__(
        self,
        space: str | None = "nas-bench-201",
        data: str | None = None,
        config: Mapping[str, Any] | TEGConfig | None = None,
        *,
        data_root: str | None = None,
        device: str = "auto",
        cache: str | None = None,
        thin: str | ThinFromSample | None = None,
        name: str | None = None,
        proxies: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(config, TEGConfig):
            config = config.to_dict()
        self.space_name = None if space is None else str(space)
        self.data = data
        self.config = dict(config) if config is not None else None
        self.data_root = None if data_root is None else str(data_root)
        self.device = device
        self.cache = None if cache is None else str(cache)
        self.thin = thin
        self.name = None if name is None else str(name)
        if self.space_name is not None and (thin is not None or name is not None):
            raise ValueError(
                f"thin and name apply to space=None (any model space); the {self.space_name} space builds its "
                "own thin network and names its cache entries"
            )
        self.proxies = None if proxies is None or not str(proxies).strip() else str(proxies)
        if self.proxies is not None:
            from teg_plugin.proxies import parse_proxy_names

            if self.space_name is None:
                raise ValueError(
                    "proxies need a registered space (space='nas-bench-201', ...); space=None scores "
                    "models as built, which the proxies' benchmark networks do not apply to"
                )
            self._proxy_names = parse_proxy_names(self.proxies)
        self._space: SearchSpace | None = None if self.space_name is None else get_space(self.space_name)
        # Fail early, in this process, on a bad setting: inside a trial of the "ts" engine the error
        # would only reach the trial's log, and every trial would fail.
        from teg_plugin.cache import check_cache_location
        from teg_plugin.data import dataset_kind
        from teg_plugin.scorer import resolve_device

        TEGConfig.from_dict(self.config or {})
        if data is not None:
            dataset_kind(data)
        resolve_device(device)
        if cache is not None:
            check_cache_location(cache)
        self._thin: ThinFromSample | None = None if thin is None else load_thin(thin)

    def extra_repr(self) -> str:
        extra = "" if self.space_name is not None else f", thin={self.thin!r}, name={self.name!r}"
        if self.proxies is not None:
            extra += f", proxies={self.proxies!r}"
        return f"space={self.space_name!r}, data={self.data!r}, config={self.config!r}, device={self.device!r}{extra}"

    @property
    def space(self) -> SearchSpace | None:
        """The search space whose architectures are scored (``None``: any model space)."""
        return self._space

    @property
    def _key(self) -> str:
        thin = self.thin
        if thin is not None and not isinstance(thin, str):
            thin = f"{getattr(thin, '__module__', '?')}:{getattr(thin, '__qualname__', '?')}:{id(thin)}"
        return json.dumps(
            [self.space_name, self.data, self.config, self.data_root, self.device, self.cache, thin, self.name],
            sort_keys=True,
        )

    def _shared(self) -> _Shared:
        key = self._key
        with _SHARED_LOCK:
            shared = _SHARED.get(key)
            if shared is None:
                if self._space is None:
                    from teg_plugin.cache import ScoreCache
                    from teg_plugin.modules import ModuleScorer

                    module_scorer = ModuleScorer(
                        self.data, TEGConfig.from_dict(self.config or {}), data_root=self.data_root, device=self.device
                    )
                    store = None if self.cache is None else ScoreCache(self.cache)
                    shared = _SHARED[key] = _Shared(module_scorer, store=store)
                else:
                    from teg_plugin.scorer import TEGScorer

                    space_scorer = TEGScorer(
                        self._space,
                        self.data,
                        TEGConfig.for_space(self._space, **(self.config or {})),
                        data_root=self.data_root,
                        device=self.device,
                        cache=self.cache,
                    )
                    shared = _SHARED[key] = _Shared(space_scorer)
            return shared

    @property
    def scorer(self) -> Any:
        """The :class:`~teg_plugin.scorer.TEGScorer` (``space=None``: the
        :class:`~teg_plugin.modules.ModuleScorer`), one per setting and process, built on first use."""
        return self._shared().scorer

    def arch_of(self, model: Any, sample: Mapping[str, Any] | None = None) -> Hashable:
        """The architecture ``model`` was frozen from (see the class docs); ``space=None``: its NNI
        sample as text (:func:`~teg_plugin.nni._user_space.sample_text`), ``None`` when unknown."""
        sample = _current_sample() if sample is None else sample
        if self._space is None:
            return None if sample is None else sample_text(sample)
        if isinstance(sample, Mapping):
            names = self._space.choices()
            missing = [name for name in names if name not in sample]
            if missing:
                raise ValueError(
                    f"the NNI sample {dict(sample)} lacks the {self._space.name} choices {missing}: TEGEvaluator "
                    f"needs a model space whose labels are the space's choices ({model_space_hint(self._space.name)}"
                    "space=None to score the models of any model space)"
                )
            return self._space.from_params({name: sample[name] for name in names})
        arch = self._space.arch_of_network(model) if isinstance(model, nn.Module) else None
        if arch is not None:
            return arch
        raise TypeError(
            f"cannot tell which {self._space.name} architecture {type(model).__name__} is: "
            f"{model_space_hint(self._space.name)}pass the NNI sample (evaluate(model, sample=...)); "
            "TEGEvaluator(space=None) scores any model as it is"
        )

    def evaluate(self, model: Any, sample: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Score ``model`` and report (inside NNI) and return its final-result dict.

        Args:
            sample: the NNI sample ``model`` was frozen from; inside NNI it is read from the trial's
                parameter. With ``space=None`` it keys the memo and cache (and is what ``thin`` gets);
                without one the model is measured every time.
        """
        shared = self._shared()
        if self._space is None:
            if sample is None:
                sample = _current_sample()
            score, text = self._score_model(model, sample, shared)
        else:
            arch = self.arch_of(model, sample)
            score = shared.scorer.score(arch)
            text = self._space.format(arch)
        experiment_dir = trial_experiment_dir()
        if experiment_dir is not None:
            # A trial process of a training-service engine: rank among the experiment's trials so far.
            default = log_and_rank(experiment_dir / RESULT_LOG, score, arch=text)
        else:
            with shared.lock:
                default = rank_default(score, shared.history)
                shared.history.append(score)
        metrics = teg_metrics(score, default)
        if self.proxies is not None:
            metrics.update(proxy_metrics(shared.scorer.proxies([arch], self._proxy_names)[0]))
        if _current_model() is not None:
            nni.report_final_result(metrics)
        return metrics

    def _score_model(
        self, model: Any, sample: Mapping[str, Any] | None, shared: _Shared
    ) -> tuple[TEGScore, str | None]:
        """``space=None``: the score of ``model`` as built, remembered per (name, sample)."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"TEGEvaluator(space=None) scores nn.Module models, got {type(model).__name__}")
        thin: Callable[[int], nn.Module] | None = None
        if self._thin is not None:
            if sample is None:
                raise ValueError(
                    "thin builds E's network from the model's NNI sample: evaluate inside NNI, or pass "
                    "evaluate(model, sample=...)"
                )
            builder, frozen_sample = self._thin, dict(sample)

            def thin(width: int) -> nn.Module:
                return builder(dict(frozen_sample), width)

        if sample is None:
            return shared.scorer.score(model, thin=thin), None
        text = sample_text(sample)
        key = (self.name or model_space_name(_current_model_space() or model), text)
        with shared.lock:
            score = shared.memo.get(key)
        if score is not None:
            return score, text
        cache_key = None
        if shared.store is not None:
            from teg_plugin.cache import CacheKey

            cache_key = CacheKey(key[0], text, shared.scorer.inputs.fingerprint)
            score = shared.store.get(cache_key)
        if score is None:
            score = shared.scorer.score(model, thin=thin)
            if cache_key is not None:
                shared.store.put(cache_key, score)
        with shared.lock:
            shared.memo.setdefault(key, score)
        return score, text


#: Statuses of a model whose evaluation is over.
_FINISHED = frozenset({ModelStatus.Trained, ModelStatus.Failed, ModelStatus.Interrupted, ModelStatus.Invalid})


def _current_model() -> Any:
    """NNI's current trial parameter (the model being evaluated), or ``None`` outside a trial.

    NNI's sequential engine leaves its last model as the current parameter after the experiment;
    a model whose training is over is such a leftover, not the model being evaluated.
    """
    current = nni.get_current_parameter()
    if current is None or getattr(current, "status", None) in _FINISHED:
        return None
    return current


def _current_sample() -> Mapping[str, Any] | None:
    """The sample of the model NNI is evaluating in this trial, if any."""
    sample = getattr(_current_model(), "sample", None)
    return sample if isinstance(sample, Mapping) else None


def _current_model_space() -> Any:
    """The (traced) model space of the model NNI is evaluating, if known (simplified format)."""
    model = getattr(_current_model(), "model", None)
    return model if getattr(model, "trace_symbol", None) is not None else None
