"""Fault injection: ``teg-nas search`` workers on one study, SIGKILLed at random and restarted.

K worker processes (each a plain ``teg-nas search`` with the same settings, as the README tells users
to start them) share one study and one SQLite score cache. Every ``kill_every`` seconds on average
(uniform between half and one and a half times that, from ``seed``), a random live worker is killed
with SIGKILL and started again at once, until the study holds its budget. When every worker has ended on its own, the study must hold:

* exactly ``budget`` counted (COMPLETE or PRUNED) trials;
* no duplicate: trial numbers unique, and no retried copy COMPLETE beside its original;
* no lost trial: every trial seen COMPLETE while the workers ran is still COMPLETE, unchanged;
* intact attributes: every COMPLETE trial's ``arch`` parses, matches its parameters, and carries the
  indicators the score cache holds for it;
* a score cache that passes SQLite's ``PRAGMA integrity_check`` with every row a valid score;
* no worker that ended with an error of its own.
"""

from __future__ import annotations

import math
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

#: Seconds between two looks at the study while the workers run (to catch a trial lost later).
_SNAPSHOT_EVERY_S = 3.0
#: Seconds between two looks at the workers.
_POLL_S = 0.2


@dataclass
class FaultReport:
    """What one fault-injection run did and found (see the module docstring for the checks)."""

    storage: str
    study_name: str
    workers: int
    budget: int
    kills: int = 0
    restarts: int = 0
    counted: int = 0
    failed: int = 0
    left_running: int = 0
    duplicates: int = 0
    lost: int = 0
    bad_attributes: int = 0
    cache_rows: int = 0
    cache_integrity: str = ""
    invalid_cache_rows: int = 0
    worker_errors: list[str] = field(default_factory=list)
    timed_out: bool = False
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return (
            self.counted == self.budget
            and self.duplicates == 0
            and self.lost == 0
            and self.bad_attributes == 0
            and self.cache_integrity == "ok"
            and self.invalid_cache_rows == 0
            and not self.worker_errors
            and not self.timed_out
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class _Worker:
    slot: int
    process: subprocess.Popen[bytes]
    stderr: Path
    killed: bool = False


def run_faults(
    storage: str,
    *,
    workdir: Path,
    search_options: Sequence[str],
    fingerprint: str,
    space_name: str = "nas-bench-201",
    workers: int = 4,
    budget: int = 100,
    kill_every: float = 20.0,
    max_kills: int | None = None,
    seed: int = 0,
    timeout: float = 3600.0,
) -> FaultReport:
    """Run the workers on ``storage`` (an Optuna storage URL or ``journal:PATH``) and check the study.

    Args:
        workdir: where the score cache and the workers' stderr go (must exist).
        search_options: ``teg-nas search`` options every worker gets besides the storage, study,
            budget, cache and output options (the data and scoring protocol, ``--seed``).
        fingerprint: the scoring fingerprint those options give (:attr:`TEGScorer.fingerprint`),
            to look up each trial's score in the cache.
        space_name: the space the workers search (its canonical name).
        workers: how many worker processes run at once (K).
        budget: the trials the study must end with.
        kill_every: mean seconds between two kills.
        max_kills: stop killing after this many (``None``: kill until the workers are done).
        seed: chooses the victims and the intervals.
        timeout: seconds after which every worker is killed and the run reported as timed out.
    """
    from teg_plugin._database import hide_password
    from teg_plugin.cache import ScoreCache

    study_name = f"faults-{uuid.uuid4().hex[:8]}"
    cache_path = workdir / f"{study_name}-cache.sqlite"
    ScoreCache(cache_path).close()  # created once, before the workers race to create it
    command = [
        sys.executable,
        "-m",
        "teg_plugin.cli",
        "search",
        "--storage",
        storage,
        "--study-name",
        study_name,
        "--budget",
        str(budget),
        "--cache",
        str(cache_path),
        "--quiet",
        "--format",
        "json",
        *search_options,
    ]
    report = FaultReport(storage=hide_password(storage), study_name=study_name, workers=workers, budget=budget)
    rng = random.Random(seed)
    generation = 0

    def start(slot: int) -> _Worker:
        nonlocal generation
        generation += 1
        stderr = workdir / f"{study_name}-worker{slot}-{generation}.err"
        with stderr.open("wb") as err:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        return _Worker(slot, process, stderr)

    started = time.monotonic()
    running = [start(slot) for slot in range(workers)]
    seen: dict[int, tuple[Any, ...]] = {}
    next_kill = started + kill_every * rng.uniform(0.5, 1.5)
    next_snapshot = started + _SNAPSHOT_EVERY_S
    budget_filled = False
    try:
        while running:
            time.sleep(_POLL_S)
            for worker in [w for w in running if w.process.poll() is not None]:
                running.remove(worker)
                if worker.process.returncode != 0:
                    tail = worker.stderr.read_text(errors="replace").strip().splitlines()[-1:]
                    report.worker_errors.append(
                        f"worker {worker.slot} exit {worker.process.returncode}: {' '.join(tail)}"
                    )
            now = time.monotonic()
            if now - started > timeout:
                report.timed_out = True
                break
            killing = (max_kills is None or report.kills < max_kills) and not budget_filled
            if running and now >= next_kill and killing:
                victim = rng.choice(running)
                victim.process.send_signal(signal.SIGKILL)
                victim.process.wait()
                running.remove(victim)
                report.kills += 1
                running.append(start(victim.slot))
                report.restarts += 1
                next_kill = now + kill_every * rng.uniform(0.5, 1.5)
            if now >= next_snapshot:
                # Once the budget is filled the workers only confirm it and end: killing them then
                # tests nothing, and a kill interval shorter than their start-up would never let the last one end.
                budget_filled = _remember_complete(storage, study_name, seen) >= budget
                next_snapshot = now + _SNAPSHOT_EVERY_S
    finally:
        for worker in running:
            worker.process.kill()
            worker.process.wait()
    report.wall_s = round(time.monotonic() - started, 1)
    _check_study(report, storage, study_name, seen, cache_path, fingerprint, space_name)
    _check_cache(report, cache_path)
    return report


def _load(storage: str, study_name: str) -> list[optuna.trial.FrozenTrial]:
    import optuna

    from teg_plugin.optuna import create_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=create_storage(storage, heartbeat_interval=None))
    except KeyError:  # not created yet
        return []
    return study.get_trials(deepcopy=False)


def _fingerprint_of(trial: Any) -> tuple[Any, ...]:
    return (tuple(trial.values or ()), sorted(trial.params.items()), sorted(trial.user_attrs.items()))


def _remember_complete(storage: str, study_name: str, seen: dict[int, tuple[Any, ...]]) -> int:
    """Record the COMPLETE trials not seen before; returns how many trials count (COMPLETE or PRUNED)."""
    from optuna.trial import TrialState

    counted = 0
    for trial in _load(storage, study_name):
        if trial.state == TrialState.COMPLETE:
            seen.setdefault(trial.number, _fingerprint_of(trial))
        counted += trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
    return counted


def _check_study(
    report: FaultReport,
    storage: str,
    study_name: str,
    seen: dict[int, tuple[Any, ...]],
    cache_path: Path,
    fingerprint: str,
    space_name: str,
) -> None:
    from optuna.trial import TrialState

    from teg_plugin.cache import CacheKey, ScoreCache
    from teg_plugin.optuna._compat import retried_trial_number
    from teg_plugin.spaces import get_space

    trials = _load(storage, study_name)
    by_number = {t.number: t for t in trials}
    report.counted = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    report.failed = sum(t.state == TrialState.FAIL for t in trials)
    report.left_running = sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
    report.duplicates = len(trials) - len(by_number)
    for trial in trials:
        original = retried_trial_number(trial)
        if (
            trial.state == TrialState.COMPLETE
            and original in by_number
            and by_number[original].state == TrialState.COMPLETE
        ):
            report.duplicates += 1
    report.lost = sum(
        1
        for number, before in seen.items()
        if number not in by_number
        or by_number[number].state != TrialState.COMPLETE
        or _fingerprint_of(by_number[number]) != before
    )
    space = get_space(space_name)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    cache = ScoreCache(cache_path)
    try:
        for trial in complete:
            if not _attributes_intact(trial, space, cache, CacheKey, fingerprint):
                report.bad_attributes += 1
    finally:
        cache.close()


def _attributes_intact(trial: Any, space: Any, cache: Any, key_type: Any, fingerprint: str) -> bool:
    from teg_plugin.optuna._attrs import ARCH_ATTR, BAD_ATTR, INDICATOR_ATTRS

    attrs = trial.user_attrs  # the values as stored: this checks them, so it reads them raw
    try:
        arch = space.parse(attrs[ARCH_ATTR])
    except (KeyError, TypeError, ValueError):
        return False
    if space.format(space.from_params(trial.params)) != attrs[ARCH_ATTR]:
        return False
    cached = cache.get(key_type(space.name, space.format(space.canonical(arch)), fingerprint))
    if cached is None or bool(attrs.get(BAD_ATTR)) != cached.bad:
        return False
    for name in INDICATOR_ATTRS:
        value, stored = attrs.get(name), getattr(cached, name)
        if (value is None) != (not math.isfinite(stored)) or (value is not None and value != stored):
            return False
    return True


def _check_cache(report: FaultReport, cache_path: Path) -> None:
    from teg_plugin.cache import row_problem

    conn = sqlite3.connect(cache_path)
    try:
        report.cache_integrity = "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
        rows = conn.execute("SELECT ntk_cond, regions, kr_mse, bad, reason FROM teg_scores").fetchall()
    finally:
        conn.close()
    report.cache_rows = len(rows)
    report.invalid_cache_rows = sum(row_problem(*row) is not None for row in rows)
