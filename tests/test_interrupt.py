"""StopBetweenTrials (teg-nas search's Ctrl-C / SIGTERM handling) in-process, with real signals."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator

import optuna
import pytest
from optuna.trial import TrialState

from teg_plugin.cli._interrupt import StopBetweenTrials


class SignallingSampler(optuna.samplers.RandomSampler):
    """Sends this process SIGINT while Optuna prepares trial ``at`` (outside the objective)."""

    def __init__(self, at: int) -> None:
        super().__init__(seed=0)
        self.at = at

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.number == self.at:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def optuna_warnings() -> Iterator[list[str]]:
    """Messages Optuna's loggers emit during the test (Optuna's root logger does not propagate)."""
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("optuna")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


@pytest.fixture
def terminal_sigint() -> Iterator[None]:
    """SIGINT handled as in a terminal (a background job of a script starts with it ignored)."""
    handler = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, handler)


def run(study: optuna.Study, n_trials: int) -> list[int]:
    called: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        called.append(trial.number)
        return trial.suggest_float("x", 0, 1)

    with StopBetweenTrials(study) as stopper:
        study.optimize(stopper.objective(objective), n_trials=n_trials)
    return called


def test_a_signal_while_optuna_prepares_a_trial_fails_that_trial_without_optuna_warnings(
    terminal_sigint, optuna_warnings
) -> None:
    study = optuna.create_study(sampler=SignallingSampler(at=2))
    with pytest.raises(KeyboardInterrupt):
        run(study, n_trials=5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    # Trials 0 and 1 ran; trial 2 was prepared when the signal came: it fails, its objective never runs.
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]
    assert not [m for m in optuna_warnings if "failed" in m], optuna_warnings  # the caller reports it in one line


class SignallingJournal(optuna.storages.journal.JournalFileBackend):
    """A journal file that sends this process SIGINT on its next write once ``armed``."""

    armed = False

    def append_logs(self, logs: list[dict]) -> None:
        if self.armed:
            self.armed = False
            os.kill(os.getpid(), signal.SIGINT)  # handled here, with Optuna's storage code below on the stack
        super().append_logs(logs)


def test_a_signal_inside_the_storage_code_an_objective_calls_stops_after_that_trial(tmp_path, terminal_sigint) -> None:
    """Optuna's journal lock breaks when an exception is raised inside it (FileNotFoundError replaces
    the interrupt): a signal that lands in storage code, even from the objective, only stops the study."""
    backend = SignallingJournal(str(tmp_path / "journal.log"))
    study = optuna.create_study(
        storage=optuna.storages.JournalStorage(backend), sampler=optuna.samplers.RandomSampler(0)
    )
    called: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        called.append(trial.number)
        backend.armed = trial.number == 1  # the signal comes while suggest_float writes the parameter
        return trial.suggest_float("x", 0, 1)

    with pytest.raises(KeyboardInterrupt):
        with StopBetweenTrials(study) as stopper:
            study.optimize(stopper.objective(objective), n_trials=5)
    assert called == [0, 1]
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE]


def test_a_signal_in_the_objective_s_own_code_fails_its_trial_at_once(terminal_sigint, optuna_warnings) -> None:
    study = optuna.create_study()
    reached: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 1:
            os.kill(os.getpid(), signal.SIGINT)
        reached.append(trial.number)  # not reached by trial 1: the interrupt comes first
        return 1.0

    with pytest.raises(KeyboardInterrupt):
        with StopBetweenTrials(study) as stopper:
            study.optimize(stopper.objective(objective), n_trials=5)
    assert reached == [0]
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert not [m for m in optuna_warnings if "failed" in m], optuna_warnings


def test_an_ignored_signal_stays_ignored() -> None:
    handler = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # `nohup`, or a background job of a script
    try:
        study = optuna.create_study()
        with StopBetweenTrials(study) as stopper:
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) == stopper._handle  # not ignored: handled
            os.kill(os.getpid(), signal.SIGINT)
            study.optimize(stopper.objective(lambda trial: 1.0), n_trials=2)
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 and not stopper.requested
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, handler)


def test_real_failures_are_still_logged_and_the_filter_is_removed(optuna_warnings) -> None:
    study = optuna.create_study()
    filters = list(logging.getLogger("optuna.study._optimize").filters)

    def broken(trial: optuna.Trial) -> float:
        raise ValueError("a real bug")

    with StopBetweenTrials(study) as stopper:
        study.optimize(stopper.objective(broken), n_trials=1, catch=(ValueError,))
    assert any("Trial 0 failed with value None" in m for m in optuna_warnings)
    assert logging.getLogger("optuna.study._optimize").filters == filters


def test_an_ignored_sigterm_stays_ignored_by_the_cli() -> None:
    from teg_plugin.cli._signals import stop_on_sigterm

    handler = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        assert stop_on_sigterm() == signal.SIG_IGN and signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        assert stop_on_sigterm() == signal.SIG_DFL and signal.getsignal(signal.SIGTERM) not in (
            signal.SIG_DFL,
            signal.SIG_IGN,
        )
    finally:
        signal.signal(signal.SIGTERM, handler)
