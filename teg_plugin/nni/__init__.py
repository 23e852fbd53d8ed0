"""TEG-NAS for NNI 3.0: the same training-free search, driven by NNI.

Two front ends share the algorithms of :mod:`teg_plugin.strategies` and the scorer of
:mod:`teg_plugin.scorer`:

* **NAS API** (``nni.nas``): :class:`NB201ModelSpace` (one ``nni.choice`` per NB201 edge, labelled
  with the edge name, the op names as values), :class:`TEGEvaluator` (scores a frozen model with
  T/E/G instead of training it) and the strategies :class:`TEGRandom`, :class:`TEGEvolution` and
  :class:`TEGReinforce`, for ``NasExperiment(space, evaluator, strategy, config)``, and
  :class:`TEGPruning`, TE-NAS's supernet pruning. The DARTS cell
  space works the same way: :class:`DartsModelSpace` (one ``nni.choice`` per DARTS choice; a frozen
  model is DARTS's evaluation network of the genotype) with ``space="darts"`` in the evaluator and
  the strategy. Your own
  ``ModelSpace`` (``LayerChoice``, ``InputChoice``, ``nni.choice``) works too: pass ``space=None``
  to the evaluator and the strategy (:func:`space_from_model_space` reads its choices).
* **HPO API** (``nnictl``): :class:`TEGTuner`, a custom tuner over a ``choice`` per NB201 edge
  (``examples/nnictl/``). :mod:`teg_plugin.nni.metrics` holds what a TEG trial reports and how a
  trial script of your own writes it; :func:`score_from_metrics` reads a reported result back.

Needs NNI 3.0, an optional dependency: ``pip install "teg-plugin[nni]"``. The rest of teg-plugin
works without it. Importing this package sets ``NNI_FRAMEWORK=none`` (unless already set), so that
``nni.nas`` does not import PyTorch Lightning, which teg-plugin does not need.

Names are imported lazily: ``from teg_plugin.nni import TEGTuner`` loads the light ``nni`` HPO API
only, while the NAS names load ``nni.nas``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
from typing import Any

_INSTALL_HINT = 'pip install "teg-plugin[nni]"'

# NNI's ``nni.nas.evaluator`` imports pytorch_lightning unless the framework is "none". The value is
# read once, when ``nni`` is first imported, so it must be set before that; an empty value is an
# error inside NNI, so it counts as unset here.
if not os.environ.get("NNI_FRAMEWORK"):
    os.environ["NNI_FRAMEWORK"] = "none"

try:
    import nni as _nni
except ImportError as exc:
    raise ImportError(f"teg_plugin.nni needs NNI 3.0 ({exc}); install it with: {_INSTALL_HINT}") from exc

if not str(getattr(_nni, "__version__", "")).startswith("3."):
    raise ImportError(
        f"teg_plugin.nni needs NNI 3.0, found nni {getattr(_nni, '__version__', '?')}; install it with: {_INSTALL_HINT}"
    )

# ``nni`` was imported before us with the default framework (pytorch): switch to "none" unless
# nni.nas is already loaded or Lightning is installed (then the user's choice stands).
if (
    _nni.get_default_framework() == "pytorch"
    and "nni.nas.evaluator" not in sys.modules
    and importlib.util.find_spec("pytorch_lightning") is None
):
    _nni.set_default_framework("none")

# NNI 3.0 scans torch.nn for module classes and warns about each non-module it meets in newer torch
# releases ("... is found to be not a nn.Module ..."): noise that says nothing about our models.
warnings.filterwarnings("ignore", message=r".*is found to be not a nn\.Module", category=RuntimeWarning)

_EXPORTS = {
    "NB201ModelSpace": "teg_plugin.nni._space",
    "arch_from_sample": "teg_plugin.nni._space",
    "sample_from_arch": "teg_plugin.nni._space",
    "arch_from_hub_sample": "teg_plugin.nni._space",
    "DartsModelSpace": "teg_plugin.nni._darts",
    "genotype_from_sample": "teg_plugin.nni._darts",
    "sample_from_genotype": "teg_plugin.nni._darts",
    "genotype_from_hub_sample": "teg_plugin.nni._darts",
    "TEGEvaluator": "teg_plugin.nni._evaluator",
    "NNIChoiceSpace": "teg_plugin.nni._user_space",
    "space_from_model_space": "teg_plugin.nni._user_space",
    "TEGStrategy": "teg_plugin.nni._strategy",
    "TEGRandom": "teg_plugin.nni._strategy",
    "TEGEvolution": "teg_plugin.nni._strategy",
    "TEGReinforce": "teg_plugin.nni._strategy",
    "TEGPruning": "teg_plugin.nni._pruning",
    "SupernetError": "teg_plugin.nni._supernet",
    "TEGTuner": "teg_plugin.nni._tuner",
    "FinalChoice": "teg_plugin.confirm",
    "score_from_metrics": "teg_plugin.nni.metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
