"""Shared fixtures: a small scoring protocol, the two file-free data pools, the shared data folder, and
what the Optuna, dashboard and plot tests share (a scorer per test module, hand-made TEG studies)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os

# One intra-op thread, here and in the subprocesses tests start (they inherit the environment): on a
# small, shared CI machine two spinning OpenMP threads per process make these tiny networks 10x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from teg_plugin.config import TEGConfig  # noqa: E402
from teg_plugin.data import ImageData, load_data  # noqa: E402
from teg_plugin.inputs import ScoringInputs  # noqa: E402
from teg_plugin.scores import TEGScore  # noqa: E402
from teg_plugin.spaces.nb201 import EDGE_NAMES, OPS, NB201Arch, NB201Space  # noqa: E402

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
    """``make_scorer(space="nas-bench-201", **overrides)``: a CPU :class:`TEGScorer` of ``space`` on the
    synthetic pool and the small config, without a persistent cache."""
    from teg_plugin.scorer import TEGScorer

    def make(space: object = "nas-bench-201", **overrides: object) -> TEGScorer:
        kwargs: dict[str, object] = {"data": synthetic, "config": small_config, "device": "cpu", "cache": None}
        kwargs.update(overrides)
        return TEGScorer(space, **kwargs)  # type: ignore[arg-type]

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
    import nni.experiment.experiment
    import nni.nas.experiment.experiment
    from nni.tools.nnictl.config_utils import Experiments

    import teg_plugin.nni  # noqa: F401  # first: it keeps nni.nas from importing PyTorch Lightning

    home = tmp_path / "nni-experiments"
    home.mkdir()
    for module in (nni.nas.experiment.experiment, nni.experiment.experiment):
        monkeypatch.setattr(module, "Experiments", functools.partial(Experiments, home_dir=str(home)))
    return home


# -- Optuna ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def quiet_optuna() -> None:
    """Optuna logs every trial at INFO: keep its warnings only, in every test."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="session")
def search_config(small_config: TEGConfig) -> TEGConfig:
    """The protocol of the Optuna tests' scorers: the small config with 64-image batches for E."""
    return dataclasses.replace(small_config, regions_batch_size=64)


@pytest.fixture(scope="module")
def scorer(space: object, make_scorer: Callable[..., object], search_config: TEGConfig) -> object:
    """A scorer of ``space`` (NB201, or the test module's own ``space``) with :func:`search_config`,
    shared by the tests of a module (its memo makes a repeated architecture free)."""
    return make_scorer(space, config=search_config)


@pytest.fixture()
def evolution_options() -> dict[str, int]:
    """Options of an evolution strategy small enough to evolve within a few trials."""
    return {"population_size": 4, "tournament_size": 2}


def _params_in_order(study: Any) -> list[dict[str, Any]]:
    return [t.params for t in sorted(study.trials, key=lambda t: t.number)]


@pytest.fixture(scope="session")
def trial_params() -> Callable[[Any], list[dict[str, Any]]]:
    """``trial_params(study)``: the parameters of every trial of ``study``, in trial-number order."""
    return _params_in_order


# -- hand-made TEG studies (figures, dashboard) -----------------------------------------------------


def _nb201_text(ops: Sequence[int]) -> str:
    return NB201Arch(tuple(OPS[i] for i in ops)).to_str()


@pytest.fixture(scope="session")
def arch_text() -> Callable[[Sequence[int]], str]:
    """``arch_text(ops)``: the text of the NB201 architecture with operation ``OPS[i]`` on each edge."""
    return _nb201_text


@pytest.fixture(scope="session")
def make_teg_study() -> Callable[..., Any]:
    """``make_teg_study(storage, name, rows, **extra_attrs)``: a minimize study with one trial per row
    ``(ops, index, kappa, regions, kr_mse)`` (``ops``: the op index per NB201 edge; ``index`` ``None``:
    none stored; ``kappa`` ``None``: a bad architecture), stored as the zero-cost objective stores them:
    the TEG user attributes plus ``extra_attrs``; complete with value kappa, or pruned when bad."""

    def make(storage: str, name: str, rows: Sequence[tuple[Any, ...]], **extra_attrs: object) -> Any:
        import optuna
        from optuna.distributions import CategoricalDistribution

        study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
        distributions = {edge: CategoricalDistribution(OPS) for edge in EDGE_NAMES}
        for ops, index, kappa, regions, mse in rows:
            bad = kappa is None
            attrs = {
                "arch": _nb201_text(ops),
                "ntk_cond": kappa,
                "regions": regions,
                "kr_mse": mse,
                "bad": bad,
                **extra_attrs,
            }
            if index is not None:
                attrs["index"] = index
            study.add_trial(
                optuna.trial.create_trial(
                    state=optuna.trial.TrialState.PRUNED if bad else optuna.trial.TrialState.COMPLETE,
                    params={edge: OPS[i] for edge, i in zip(EDGE_NAMES, ops)},
                    distributions=distributions,
                    value=None if bad else kappa,
                    user_attrs=attrs,
                )
            )
        return study

    return make


#: ``teg-nas bench faults``, short: 3 workers, budget 16, a kill every ~3 s, at most 2 kills, the
#: small protocol (tests/test_faults.py, and tests/test_postgres.py on PostgreSQL).
_SHORT_FAULTS = [
    *("--workers", "3", "--budget", "16", "--kill-every", "3", "--max-kills", "2"),
    *("--dataset", "synthetic", "--repeat", "1", "--batch-size", "8", "--quiet", "--format", "json"),
]


@pytest.fixture(scope="session")
def run_short_faults() -> Callable[..., tuple[int, dict[str, Any], str]]:
    """``run_short_faults(storage, workdir, *extra)``: the short ``teg-nas bench faults`` on ``storage``
    with ``extra`` options; returns its exit status, its one run's report and its stderr. Call it with
    ``capsys`` active: the report is read from the captured stdout."""

    def run(
        capsys: pytest.CaptureFixture[str], storage: str, workdir: Path, *extra: str
    ) -> tuple[int, dict[str, Any], str]:
        import json

        from teg_plugin.cli import main

        code = main(["bench", "faults", "--storage", storage, "--workdir", str(workdir), *_SHORT_FAULTS, *extra])
        out, err = capsys.readouterr()
        (report,) = json.loads(out)["runs"]
        return code, report, err

    return run


# -- an instant scorer (Optuna sampler tests) --------------------------------------------------------


class FakeScorer:
    """A TEGScorer stand-in with instant, deterministic, isomorphism-invariant pseudo-scores, and
    pseudo-proxies (any name; NaN, as a flagged proxy, for some architectures) whose calls it counts."""

    def __init__(self, space: NB201Space) -> None:
        self.space = space
        self.n_measured = 0
        self._memo: dict[str, TEGScore] = {}
        #: Every architecture text :meth:`proxies` was asked for, in order.
        self.proxied: list[str] = []

    def score(self, arch: Hashable) -> TEGScore:
        return self.score_many([arch])[0]

    def score_many(self, archs: Iterable[Hashable]) -> list[TEGScore]:
        return [self._of(self.space.format(self.space.canonical(arch))) for arch in archs]

    def score_mask(self, mask: Mapping[str, tuple[str, ...]]) -> TEGScore:
        return self._of(repr(sorted((k, sorted(v)) for k, v in mask.items())))

    def proxies(self, archs: Iterable[Hashable], names: Iterable[str]) -> list[dict[str, float]]:
        out = []
        for arch in archs:
            text = self.space.format(self.space.canonical(arch))
            self.proxied.append(self.space.format(arch))
            out.append({name: self.proxy(text, name) for name in names})
        return out

    @staticmethod
    def proxy(text: str, name: str) -> float:
        """The pseudo-proxy ``name`` of the architecture of canonical text ``text``."""
        digest = hashlib.sha256(f"{name}:{text}".encode()).digest()
        return math.nan if digest[1] % 11 == 0 else float(digest[0])

    def _of(self, text: str) -> TEGScore:
        if text not in self._memo:
            self.n_measured += 1
            digest = hashlib.sha256(text.encode()).digest()
            if digest[3] % 13 == 0:
                self._memo[text] = TEGScore.flagged("fake bad")
            else:
                self._memo[text] = TEGScore(1.0 + digest[0], float(digest[1]), digest[2] / 255.0)
        return self._memo[text]


@pytest.fixture()
def fake(space: NB201Space) -> FakeScorer:
    """A fresh :class:`FakeScorer` of NB201."""
    return FakeScorer(space)
