"""Shared fixtures: a small scoring protocol, the two file-free data pools, and the shared data folder."""

from __future__ import annotations

import functools

import os

# One intra-op thread, here and in the subprocesses tests start (they inherit the environment): on a
# small, shared CI machine two spinning OpenMP threads per process make these tiny networks 10x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from teg_plugin.config import TEGConfig  # noqa: E402
from teg_plugin.data import ImageData, load_data  # noqa: E402
from teg_plugin.inputs import ScoringInputs  # noqa: E402
from teg_plugin.spaces.nb201 import NB201Space  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]) if os.environ["OMP_NUM_THREADS"].isdigit() else 1)

#: ``shared/data`` beside the project checkout (benchmark tables); tests needing it skip without it.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def small_config() -> TEGConfig:
    """A protocol small enough for 2 CPU cores: one repeat, 8-image batches, 2x100 crops for E."""
    return TEGConfig(repeat=1, batch_size=8, regions_batch_size=100, regions_batches=2)


@pytest.fixture(scope="session")
def space() -> NB201Space:
    return NB201Space()


@pytest.fixture(scope="session")
def embedded() -> ImageData:
    return load_data("embedded")


@pytest.fixture(scope="session")
def synthetic() -> ImageData:
    return load_data("synthetic")


@pytest.fixture(scope="session")
def embedded_inputs(embedded: ImageData, small_config: TEGConfig) -> ScoringInputs:
    return ScoringInputs.draw(embedded, small_config)


@pytest.fixture(scope="session")
def make_scorer(synthetic: ImageData, small_config: TEGConfig) -> Callable[..., object]:
    """``make_scorer(**overrides)``: a CPU :class:`TEGScorer` on the synthetic pool and the small config."""
    from teg_plugin.scorer import TEGScorer

    def make(**overrides: object) -> TEGScorer:
        kwargs: dict[str, object] = {"data": synthetic, "config": small_config, "device": "cpu", "cache": None}
        kwargs.update(overrides)
        return TEGScorer("nas-bench-201", **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared benchmark tables (``<checkout>/../shared/data``); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def nni_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """NNI's experiment list (normally ~/nni-experiments/.experiment) and working folder under tmp_path."""
    pytest.importorskip("nni")
    import teg_plugin.nni  # noqa: F401  # first: it keeps nni.nas from importing PyTorch Lightning
    import nni.experiment.experiment
    import nni.nas.experiment.experiment
    from nni.tools.nnictl.config_utils import Experiments

    home = tmp_path / "nni-experiments"
    home.mkdir()
    for module in (nni.nas.experiment.experiment, nni.experiment.experiment):
        monkeypatch.setattr(module, "Experiments", functools.partial(Experiments, home_dir=str(home)))
    return home
