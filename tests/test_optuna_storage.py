"""create_storage: URLs, several worker processes on one study, and a worker killed mid-trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from teg_plugin.config import TEGConfig
from teg_plugin.optuna import DEFAULT_STORAGE_URL, TEG_ATTRS, TEGSampler, create_storage, suggest
from teg_plugin.optuna._compat import retried_trial_number
from teg_plugin.scorer import TEGScorer
from teg_plugin.spaces import NB201Space

# A worker process: scores with the small protocol and runs N zero-cost trials of study "s".
WORKER = textwrap.dedent(
    """
    import sys, time
    import optuna
    from teg_plugin.config import TEGConfig
    from teg_plugin.scorer import TEGScorer
    from teg_plugin.optuna import TEGSampler, create_storage, suggest, zero_cost_objective

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, n_trials, mode, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    config = TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2)
    scorer = TEGScorer("nas-bench-201", data="synthetic", config=config, device="cpu")
    storage = create_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name="s", storage=storage, sampler=TEGSampler(scorer.space, scorer, seed=0))
    if mode == "zero-cost":
        study.optimize(zero_cost_objective(scorer.space, scorer), n_trials=n_trials)
    else:  # "hang": take a trial, say so, then never finish it
        def hang(trial):
            suggest(scorer.space, trial)
            open(marker, "w").close()
            time.sleep(300)
        study.optimize(hang, n_trials=1)
    """
)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("worker") / "worker.py"
    path.write_text(WORKER)
    return path


def _start(worker: Path, url: str, n_trials: int, mode: str = "zero-cost", marker: str = "-") -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(worker), url, str(n_trials), mode, marker],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_default_is_a_sqlite_file_in_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = create_storage()
    assert isinstance(storage, optuna.storages.RDBStorage)
    assert storage.url == DEFAULT_STORAGE_URL
    assert (tmp_path / "teg-nas.db").exists()
    assert storage.engine_kwargs["connect_args"] == {"timeout": 60}
    assert storage.heartbeat_interval == 60
    assert storage.get_heartbeat_stale_trial_callback() is not None


def test_journal_and_options(tmp_path) -> None:
    journal = create_storage(f"journal:{tmp_path / 'logs' / 'study.log'}")
    assert isinstance(journal, optuna.storages.JournalStorage)
    study = optuna.create_study(storage=journal)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert len(study.trials) == 2
    plain = create_storage(f"sqlite:///{tmp_path / 'plain.db'}", heartbeat_interval=None)
    assert plain.heartbeat_interval is None and plain.get_heartbeat_stale_trial_callback() is None
    timed = create_storage(f"sqlite:///{tmp_path / 'timed.db'}", heartbeat_interval=5, grace_period=7)
    assert (timed.heartbeat_interval, timed.grace_period) == (5, 7)
    assert create_storage("sqlite://").heartbeat_interval is None  # nobody can share an in-memory database


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("teg-nas.db", "malformed storage URL"),
        ("not a url", "malformed storage URL"),
        ("journal:", "journal storage needs a file path"),
        ("", "non-empty"),
        ("nosuchdatabase://host/db", "unknown database"),
    ],
)
def test_malformed_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_storage(url)


def test_journal_paths_that_are_not_journal_files(tmp_path) -> None:
    with pytest.raises(ValueError, match="is a folder"):
        create_storage(f"journal:{tmp_path}")
    other = tmp_path / "notes.txt"
    other.write_text("hello {not json\n")
    with pytest.raises(ValueError, match="is not an Optuna journal file"):
        create_storage(f"journal:{other}")


def test_bad_heartbeat_options() -> None:
    with pytest.raises(ValueError, match="heartbeat_interval"):
        create_storage("sqlite://", heartbeat_interval=0)
    with pytest.raises(ValueError, match="max_retry must be >= 0, got -1"):
        create_storage("sqlite://", max_retry=-1)
    with pytest.raises(TypeError, match="grace_period must be an int, got 1.5"):
        create_storage("sqlite://", grace_period=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="heartbeat_interval must be an int, got True"):
        create_storage("sqlite://", heartbeat_interval=True)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_worker_processes_share_one_study(worker, tmp_path, kind: str) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else f"journal:{tmp_path / 'study.log'}"
    optuna.create_study(study_name="s", storage=create_storage(url))
    n_trials = 3
    workers = [_start(worker, url, n_trials) for _ in range(2)]
    for process in workers:
        output, _ = process.communicate(timeout=240)
        assert process.returncode == 0, output

    trials = optuna.load_study(study_name="s", storage=create_storage(url)).trials
    assert sorted(t.number for t in trials) == list(range(2 * n_trials))  # none lost, no duplicates
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)  # PRUNED: a bad arch
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 1
    assert all(set(TEG_ATTRS) <= set(t.user_attrs) for t in trials)


@pytest.mark.slow
def test_a_killed_worker_trial_is_failed_and_retried(worker, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="s", storage=create_storage(url))
    marker = tmp_path / "started"
    process = _start(worker, url, 1, mode="hang", marker=str(marker))
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the worker never started its trial"
            time.sleep(0.2)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
    time.sleep(3)  # longer than the grace period since the last heartbeat

    space = NB201Space()
    scorer = TEGScorer(
        space,
        data="synthetic",
        config=TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2),
        device="cpu",
    )
    storage = create_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name="s", storage=storage, sampler=TEGSampler(space, scorer, seed=0))
    assert study.trials[0].state == TrialState.RUNNING  # the killed worker's trial, stuck so far

    def quick(trial: optuna.Trial) -> float:
        suggest(space, trial)
        return 1.0

    study.optimize(quick, n_trials=2)
    trials = {t.number: t for t in study.trials}
    killed = trials[0]
    assert killed.state == TrialState.FAIL
    retries = [t for t in trials.values() if retried_trial_number(t) == 0]
    assert len(retries) == 1
    (retry,) = retries
    assert retry.state == TrialState.COMPLETE
    assert retry.params == killed.params
    assert retry.user_attrs["arch"] == killed.user_attrs["arch"]  # the sampler's attributes travel too
    assert len(trials) == 3  # the stale one, its retry, and one new trial


def test_a_dead_trial_on_a_journal_stops_the_search_with_a_warning(tmp_path, monkeypatch, caplog) -> None:
    """A journal storage has no heartbeat: a trial left RUNNING by a killed worker never ends, so the
    trial waiting for it gives up after a bounded wait (shortened here) instead of hanging."""
    from teg_plugin.optuna import BudgetReached, _budget, within_budget

    monkeypatch.setattr(_budget, "_UNEXPIRABLE_WAIT_S", 1.0)
    monkeypatch.setattr(_budget, "_BUDGET_POLL_S", 0.05)
    space = NB201Space()
    study = optuna.create_study(storage=create_storage(f"journal:{tmp_path / 'j.log'}"), study_name="j")
    study.ask()  # trial 0: RUNNING forever, as if its worker had been killed

    def objective(trial: optuna.Trial) -> float:
        suggest(space, trial)
        return 1.0

    start = time.monotonic()
    with caplog.at_level("WARNING"):
        study.optimize(within_budget(objective, space, budget=2), n_trials=3, catch=(BudgetReached,))
    assert time.monotonic() - start < 30
    states = [t.state for t in study.trials]
    assert states[:3] == [TrialState.RUNNING, TrialState.COMPLETE, TrialState.FAIL]
    messages = [r.getMessage() for r in caplog.records]
    assert any("still RUNNING" in m and "study.tell(0, state=optuna.trial.TrialState.FAIL)" in m for m in messages)
    assert not any(m.startswith("Trial 2 failed") for m in messages)  # the surplus trial is not reported as failed


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")  # the dead trial
def test_a_long_wait_for_a_stale_trial_is_explained_then_the_search_goes_on(tmp_path, monkeypatch, caplog) -> None:
    """With heartbeat, a killed worker's RUNNING trial is failed after the grace period; meanwhile the
    waiting trial says once what it waits for (instead of a silent progress bar)."""
    from teg_plugin.optuna import BudgetReached, _budget, within_budget
    from teg_plugin.optuna._compat import trial_id_of

    monkeypatch.setattr(_budget, "_WAIT_NOTICE_S", 0.5)
    monkeypatch.setattr(_budget, "_BUDGET_POLL_S", 0.05)
    space = NB201Space()
    storage = create_storage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="h")
    dead = study.ask()  # trial 0: RUNNING, its worker killed after one heartbeat
    storage.record_heartbeat(trial_id_of(dead))

    def objective(trial: optuna.Trial) -> float:
        suggest(space, trial)
        return 1.0

    with caplog.at_level("WARNING"):
        study.optimize(within_budget(objective, space, budget=1), n_trials=1, catch=(BudgetReached,))
    assert [t.state for t in study.trials][:2] == [TrialState.FAIL, TrialState.COMPLETE]
    notices = [r.getMessage() for r in caplog.records if "wait for trial(s) [0], still RUNNING" in r.getMessage()]
    assert len(notices) == 1
    assert (
        "study.tell(0, state=optuna.trial.TrialState.FAIL)" in notices[0]
    )  # the way out for a trial without heartbeat
