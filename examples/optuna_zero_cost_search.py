"""Zero-cost architecture search with Optuna: TEG indicators instead of training.

An Optuna study searches the NAS-Bench-201 cell space. :class:`~teg_plugin.optuna.TEGSampler` runs
an aging evolution guided by the TEG scores, and the multi-objective zero-cost objective scores
every proposed cell with the three training-free indicators instead of training it:

* T, trainability: the NTK condition number ``ntk_cond`` (minimize),
* E, expressivity: the number of linear regions ``regions`` (maximize),
* G, generalization: the NTK kernel-regression error ``kr_mse`` (minimize).

The study's Pareto front (``study.best_trials``) holds the cells no other cell beats on all three;
:func:`~teg_plugin.optuna.best_trial` picks the TEG-NAS winner, the lowest sum of the three ranks.
The study lives in a SQLite file, and the TEG figures are saved into it for optuna-dashboard.

    python examples/optuna_zero_cost_search.py                 # 30 cells, the paper's protocol (~4 min on 2 CPU cores)
    python examples/optuna_zero_cost_search.py --trials 100 --storage sqlite:///zero-cost.db
    python examples/optuna_zero_cost_search.py --small         # a few seconds: 6 cells, a reduced protocol

The images are the CIFAR-10 sample embedded in teg-plugin (500 images), so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import optuna

from teg_plugin.config import TEGConfig
from teg_plugin.optuna import DIRECTIONS, METRIC_NAMES, TEGSampler, best_trial, create_storage, zero_cost_objective
from teg_plugin.scorer import TEGScorer

#: ``--small``: one initialisation, 8-image NTK batches, 2 x 64 crops for the linear regions.
SMALL_CONFIG = TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick check: 6 trials and a reduced scoring protocol")
    parser.add_argument("--trials", type=int, default=None, help="architectures to score (default: 30; 6 with --small)")
    parser.add_argument(
        "--storage", default=None, help="Optuna storage URL (default: a SQLite file in a new temporary folder)"
    )
    parser.add_argument(
        "--study-name", default="teg-zero-cost", help="study name; an existing study resumes (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the evolution (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: %(default)s)")
    args = parser.parse_args(argv)
    n_trials = args.trials if args.trials is not None else (6 if args.small else 30)
    storage_url = args.storage or f"sqlite:///{Path(tempfile.mkdtemp(prefix='teg-zero-cost-')) / 'study.db'}"

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scorer = TEGScorer(
        "nas-bench-201", data="embedded", config=SMALL_CONFIG if args.small else TEGConfig(), device=args.device
    )
    space = scorer.space
    study = optuna.create_study(
        study_name=args.study_name,
        storage=create_storage(storage_url),
        sampler=TEGSampler(space, scorer, strategy="evolution", seed=args.seed),
        directions=list(DIRECTIONS),  # minimize ntk_cond, maximize regions, minimize kr_mse
        load_if_exists=True,
    )
    with warnings.catch_warnings():  # metric names are an experimental Optuna feature
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(METRIC_NAMES))
    print(
        f"scoring {n_trials} NB201 cells on {scorer.data.name} ({len(scorer.data)} images) on {scorer.device}; "
        f"study '{study.study_name}' in {storage_url}",
        flush=True,
    )
    # A cell with an undefined indicator is "bad": its trial is pruned and never joins the front.
    study.optimize(zero_cost_objective(space, scorer, multi_objective=True), n_trials=n_trials)

    front = sorted(study.best_trials, key=lambda t: t.number)
    print(f"\nPareto front: {len(front)} of {len(study.trials)} trials (T: lower is better, E: higher, G: lower)")
    pad = max(len(t.user_attrs["arch"]) for t in front)
    for trial in front:
        print(f"  #{trial.number:<3d} {trial.user_attrs['arch']:<{pad}}  {_teg(trial)}")
    winner = best_trial(study)
    print(f"\nTEG winner (lowest rank-sum): #{winner.number} {winner.user_attrs['arch']}  {_teg(winner)}")

    try:
        import optuna_dashboard  # noqa: F401
    except ImportError:
        print('\nfor the TEG figures in optuna-dashboard: pip install "teg-plugin[dashboard]"')
        return 0
    from teg_plugin.dashboard import publish_to_dashboard

    published = publish_to_dashboard(study)
    print(
        f"\nsaved {len(published.graph_object_ids)} TEG figures and a note on trial #{published.best_trial_number} "
        "to the study; review it with:"
    )
    print(f"  optuna-dashboard {storage_url}")
    return 0


def _teg(trial: optuna.trial.FrozenTrial) -> str:
    attrs = trial.user_attrs
    return f"T={attrs['ntk_cond']:<9.4g} E={attrs['regions']:<7.0f} G={attrs['kr_mse']:.4g}"


if __name__ == "__main__":
    sys.exit(main())
