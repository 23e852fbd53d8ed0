"""teg-plugin: training-free NAS with TEG indicators for Optuna and NNI.

The three names most code needs are here: :class:`TEGScorer` (scores architectures of a space),
:class:`TEGConfig` (its scoring protocol) and :class:`TEGScore` (T, E and G of one architecture)::

    from teg_plugin import TEGConfig, TEGScore, TEGScorer

They are imported on first use, so ``import teg_plugin`` stays cheap (the scorer needs PyTorch).
The rest lives in the subpackages: ``teg_plugin.spaces``, ``teg_plugin.strategies``,
``teg_plugin.optuna`` and ``teg_plugin.nni``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teg_plugin.config import TEGConfig
    from teg_plugin.scorer import TEGScorer
    from teg_plugin.scores import TEGScore

__version__ = "0.1.0"

__all__ = ["TEGConfig", "TEGScore", "TEGScorer"]


def __getattr__(name: str) -> Any:
    value: type
    if name == "TEGConfig":
        from teg_plugin.config import TEGConfig as value
    elif name == "TEGScore":
        from teg_plugin.scores import TEGScore as value
    elif name == "TEGScorer":
        from teg_plugin.scorer import TEGScorer as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
