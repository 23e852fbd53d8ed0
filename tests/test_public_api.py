"""The public names: few enough to hold in one's head, internals in their private modules."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import teg_plugin
import teg_plugin.strategies


def test_top_level_names_are_imported_on_first_use() -> None:
    code = (
        "import sys, teg_plugin\n"
        "assert 'torch' not in sys.modules and 'teg_plugin.scorer' not in sys.modules\n"
        "from teg_plugin import TEGConfig, TEGScore\n"
        "assert 'torch' not in sys.modules\n"
        "from teg_plugin import TEGScorer\n"
        "assert 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_top_level_names_are_the_classes_themselves() -> None:
    from teg_plugin import TEGConfig, TEGScore, TEGScorer
    from teg_plugin.config import TEGConfig as config_class
    from teg_plugin.scorer import TEGScorer as scorer_class
    from teg_plugin.scores import TEGScore as score_class

    assert (TEGConfig, TEGScore, TEGScorer) == (config_class, score_class, scorer_class)
    assert sorted(teg_plugin.__all__) == ["TEGConfig", "TEGScore", "TEGScorer"]
    assert set(teg_plugin.__all__) <= set(dir(teg_plugin))
    with pytest.raises(AttributeError, match="no attribute 'TEGScorers'"):
        teg_plugin.TEGScorers  # noqa: B018


def test_strategies_export_the_strategies_not_their_parts() -> None:
    assert sorted(teg_plugin.strategies.__all__) == sorted(
        [
            "STRATEGY_NAMES",
            "EvolutionStrategy",
            "PruningStrategy",
            "RandomStrategy",
            "ReinforceStrategy",
            "Strategy",
            "make_strategy",
        ]
    )
    for name in teg_plugin.strategies.__all__:
        assert getattr(teg_plugin.strategies, name) is not None
    internals = {
        "_base": ["ArchT"],
        "_evolution": ["Tournament", "DEFAULT_POPULATION_SIZE"],
        "_factory": ["strategy_key"],
        "_pruning": ["PruneCandidate", "PruneRound", "ScoreMask"],
        "_reinforce": ["Policy"],
        "_reward": ["BAD_REWARD", "TEGReward"],
    }
    for module, names in internals.items():
        private = importlib.import_module(f"teg_plugin.strategies.{module}")
        for name in names:
            assert hasattr(private, name)
            assert not hasattr(teg_plugin.strategies, name), f"teg_plugin.strategies.{name} is internal"


def test_nni_exports_what_examples_and_docs_use() -> None:
    pytest.importorskip("nni", reason='NNI is not installed: pip install "teg-plugin[nni]"')
    nni_api = importlib.import_module("teg_plugin.nni")
    assert sorted(nni_api.__all__) == sorted(
        [
            "DartsModelSpace",
            "FinalChoice",
            "NB201ModelSpace",
            "NNIChoiceSpace",
            "SupernetError",
            "TEGEvaluator",
            "TEGEvolution",
            "TEGPruning",
            "TEGRandom",
            "TEGReinforce",
            "TEGStrategy",
            "TEGTuner",
            "arch_from_hub_sample",
            "arch_from_sample",
            "genotype_from_hub_sample",
            "genotype_from_sample",
            "sample_from_arch",
            "sample_from_genotype",
            "score_from_metrics",
            "space_from_model_space",
        ]
    )
    # A trial script's helpers (examples/nnictl/trial.py) live in teg_plugin.nni.metrics.
    metrics = importlib.import_module("teg_plugin.nni.metrics")
    for name in ("RESULT_LOG", "log_and_rank", "rank_default", "teg_metrics", "trial_experiment_dir"):
        assert name in metrics.__all__ and name not in nni_api.__all__


def test_nni_strategies_default_to_the_strategies_defaults() -> None:
    pytest.importorskip("nni", reason='NNI is not installed: pip install "teg-plugin[nni]"')
    from teg_plugin.nni import TEGEvolution, TEGRandom, TEGReinforce
    from teg_plugin.strategies import EvolutionStrategy, RandomStrategy, ReinforceStrategy

    for nni_class, strategy_class, names in [
        (TEGRandom, RandomStrategy, ["max_redraws"]),
        (TEGEvolution, EvolutionStrategy, ["population_size", "tournament_size"]),
        (TEGReinforce, ReinforceStrategy, ["learning_rate", "baseline_momentum"]),
    ]:
        ours = inspect.signature(strategy_class).parameters
        theirs = inspect.signature(nni_class).parameters
        for name in names:
            assert theirs[name].default == ours[name].default, f"{nni_class.__name__}({name}=...)"
