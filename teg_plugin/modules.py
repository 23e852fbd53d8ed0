"""TEG indicators of any ``nn.Module`` classifier, outside any search space."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from teg_plugin.config import TEGConfig
from teg_plugin.data import ImageData, load_data
from teg_plugin.indicators.measure import CandidateNetworks, measure_networks
from teg_plugin.indicators.ntk import is_weight
from teg_plugin.indicators.regions import NoReLUError  # raised by ModuleScorer.score; importable from here
from teg_plugin.inputs import ScoringInputs
from teg_plugin.scores import TEGScore, final_ranks

__all__ = ["ModuleScorer", "NoReLUError", "score_module"]

#: A model, or a builder called with the protocol's width that returns one.
ModelOrBuilder = nn.Module | Callable[[int], nn.Module]


class ModuleScorer:
    """Scores ``nn.Module`` classifiers with TEG indicators, all on the same inputs.

    The model is never modified: every repeat measures a deep copy (re-initialised with the
    protocol's name-seeded Kaiming weights unless ``reinitialise=False``, in train mode, on
    ``device``); hooks live on those copies only. T and G need logits ``(batch, classes)``; E needs
    ReLU-family activation modules (``nn.ReLU``, ``nn.ReLU6``...; a functional ``F.relu`` is
    invisible) and raises :class:`NoReLUError` without them.

    E's thin network is the user's to give: ``thin(width)`` returning a network that takes the
    protocol's crops ``(batch, regions_width, 3, 3)``. Without it, E counts the patterns of the model
    itself over the T/G images; a wide model gives every image its own pattern (E saturates at
    ``2 * batch_size`` and then ranks nothing), which is warned about.

    Args:
        data: an :class:`ImageData` pool or a dataset name (default: CIFAR-10 if found, else the
            embedded sample).
        config: the protocol (``width`` is what a builder model receives).
        data_root: where dataset files live.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Example:
        >>> def cnn(width, in_channels=3):
        ...     return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        ...                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))
        >>> scorer = ModuleScorer(data="synthetic", config=TEGConfig(repeat=1, batch_size=8), device="cpu")
        >>> model = cnn(4)
        >>> before = [p.clone() for p in model.parameters()]
        >>> score = scorer.score(model, thin=lambda width: cnn(2, in_channels=width))
        >>> score.bad, all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
        (False, True)
    """

    def __init__(
        self,
        data: ImageData | str | None = None,
        config: TEGConfig | None = None,
        *,
        data_root: str | os.PathLike[str] | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        from teg_plugin.scorer import resolve_device

        self.data = data if isinstance(data, ImageData) else load_data(data, data_root)
        self.config = (config or TEGConfig()).resolved()
        self.device = resolve_device(device)
        self.inputs = ScoringInputs.draw(self.data, self.config)

    def score(
        self,
        model: ModelOrBuilder,
        *,
        thin: Callable[[int], nn.Module] | None = None,
        generalization_parameter: Callable[[str], bool] | None = None,
        reinitialise: bool = True,
    ) -> TEGScore:
        """The TEG score of ``model`` (a module, or ``width -> module``).

        Args:
            thin: ``width -> nn.Module``, E's thin network (see the class docs).
            generalization_parameter: which weights (by name) enter G; default every weight.
            reinitialise: re-draw the weights with the protocol's initialisation (default), or
                keep the model's own (every repeat then measures the same weights).
        """
        networks = self.networks(
            model, thin=thin, generalization_parameter=generalization_parameter, reinitialise=reinitialise
        )
        score = measure_networks(networks, self.inputs, self.config, self.device)
        if thin is None and not score.bad and score.regions >= 2 * self.config.batch_size:
            import warnings

            warnings.warn(
                f"E is saturated: every one of the {2 * self.config.batch_size} images has its own activation "
                "pattern, so E does not rank this model; give E a thin network: ModuleScorer.score(thin=width -> "
                "net), ChoiceSpace/TrialSpace(thin=(choices|trial, width) -> net), or TEGEvaluator(thin="
                "'package.module:function' taking (sample, width))",
                stacklevel=2,
            )
        return score

    def networks(
        self,
        model: ModelOrBuilder,
        *,
        thin: Callable[[int], nn.Module] | None = None,
        generalization_parameter: Callable[[str], bool] | None = None,
        reinitialise: bool = True,
    ) -> CandidateNetworks:
        """How :meth:`score` builds ``model``'s networks (copies; the model itself is never touched)."""
        if isinstance(model, nn.Module):
            original = model

            def proxy() -> nn.Module:
                return copy.deepcopy(original)

        elif callable(model):
            builder = model

            def proxy() -> nn.Module:
                return builder(self.config.resolved_width())

        else:
            raise TypeError(f"expected an nn.Module or a builder width -> nn.Module, got {type(model).__name__}")

        def thin_net() -> nn.Module | None:
            return None if thin is None else thin(self.config.regions_width)

        return CandidateNetworks(proxy, thin_net, generalization_parameter or is_weight, initialise=reinitialise)

    def rank(self, models: Sequence[ModelOrBuilder] | Iterable[ModelOrBuilder], **options: object) -> list[int]:
        """Positions (1 = best TEG rank-sum) of ``models``, in the given order; ``options`` as for
        :meth:`score`."""
        scores = [self.score(m, **options) for m in models]  # type: ignore[arg-type]
        return list(final_ranks(scores))


def score_module(
    model: ModelOrBuilder,
    *,
    data: ImageData | str | None = None,
    config: TEGConfig | None = None,
    thin: Callable[[int], nn.Module] | None = None,
    device: str | torch.device = "auto",
) -> TEGScore:
    """One model's TEG score: :meth:`ModuleScorer.score` with a scorer of its own (to compare
    several models, use one :class:`ModuleScorer`, so they see the same inputs)."""
    return ModuleScorer(data, config, device=device).score(model, thin=thin)
