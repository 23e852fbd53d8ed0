"""Which teg-plugin NNI model space goes with which search space (for error messages)."""

from __future__ import annotations

_MODEL_SPACES = {"nas-bench-201": "teg_plugin.nni.NB201ModelSpace", "darts": "teg_plugin.nni.DartsModelSpace"}


def model_space_hint(space_name: str) -> str:
    """``"use <model space of space_name>, or "`` (empty when the space has none)."""
    model_space = _MODEL_SPACES.get(space_name)
    return f"use {model_space}, or " if model_space else ""
