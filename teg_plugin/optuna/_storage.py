"""Optuna storages for TEG studies shared by several workers, that survive a killed worker."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from teg_plugin._checks import check_int
from teg_plugin._database import (
    DEFAULT_STORAGE_URL,
    describe,
    error_text,
    full_text,
    is_sqlite_memory,
    journal_path,
    make_sqlite_folder,
    parse_database_url,
)
from teg_plugin.optuna._compat import retry_stale_trials
from teg_plugin.optuna._journal import JOURNAL_RECORD_START


def create_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int | None = 60,
    grace_period: int | None = None,
    max_retry: int | None = 3,
) -> BaseStorage:
    """An Optuna storage for ``url`` that several worker processes can share.

    * ``None``: :data:`DEFAULT_STORAGE_URL` (``teg-nas.db`` in the working directory).
    * ``"journal:PATH"``: a :class:`~optuna.storages.JournalStorage` appending to the file ``PATH``
      (works where SQLite file locking does not, e.g. NFS). Optuna's journal storage has no
      heartbeat, so the heartbeat arguments do not apply to it.
    * any other SQLAlchemy URL (``sqlite:///study.db``, ``postgresql://user:pass@host/db``): an
      :class:`~optuna.storages.RDBStorage` with a heartbeat. A worker killed mid-trial (even by
      SIGKILL) stops beating; ``grace_period`` seconds later, the next trial started by any worker
      marks the stale trial ``FAIL`` (Optuna's ``fail_stale_trials`` runs at the start of each trial
      of :meth:`~optuna.study.Study.optimize`) and re-queues a copy with the same parameters and user
      attributes, up to ``max_retry`` times; the copy's ``failed_trial`` system attribute names the
      original. SQLite connections wait up to 60 s for a lock; an in-memory SQLite database
      (``sqlite://``), which no other worker can share, gets no heartbeat.

    The heartbeat is an experimental Optuna feature; its ExperimentalWarning is silenced here.

    Args:
        url: where the study lives (see above).
        heartbeat_interval: seconds between heartbeats of a running trial; ``None`` turns the
            heartbeat (and retries) off.
        grace_period: seconds without a heartbeat before a trial counts as stale (``None``: twice
            ``heartbeat_interval``).
        max_retry: how many times a stale trial is retried (``None``: without limit; 0: never).

    Raises:
        ValueError: a malformed URL, an unknown database, a database that cannot be opened, an
            empty journal path, a non-positive interval or a negative ``max_retry``.
        TypeError: an interval or ``max_retry`` that is not an int.
        teg_plugin._database.MissingDriverError: (an ``ImportError``) the URL's database driver is
            not installed; the message says how to install it.

    Example:
        >>> import optuna
        >>> storage = create_storage("sqlite://", heartbeat_interval=10)  # in memory
        >>> study = optuna.create_study(storage=storage)
        >>> study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
        >>> len(study.trials)
        2
    """
    if url is None:
        url = DEFAULT_STORAGE_URL
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"storage URL must be a non-empty string, got {url!r}")
    url = url.strip()
    for name, value, minimum in (
        ("heartbeat_interval", heartbeat_interval, 1),
        ("grace_period", grace_period, 1),
        ("max_retry", max_retry, 0),
    ):
        if value is not None:
            check_int(name, value, minimum=minimum)

    journal = journal_path(url)
    if journal is not None:
        return _journal_storage(journal)
    return _rdb_storage(url, heartbeat_interval, grace_period, max_retry)


def _journal_storage(path_text: str) -> BaseStorage:
    from optuna.storages.journal import JournalStorage

    from teg_plugin.optuna._journal import RepairingJournalBackend

    if not path_text.strip():
        raise ValueError("journal storage needs a file path: 'journal:PATH', e.g. 'journal:teg-nas.log'")
    path = Path(path_text).expanduser()
    if path.is_dir():
        raise ValueError(
            f"journal storage {path_text!r} is a folder: give a file path, e.g. 'journal:{path / 'teg-nas.log'}'"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _check_journal_file(path)
        backend = RepairingJournalBackend(path)
        backend.drop_cut_off_record()  # before anything reads it: say at once what a crash cut off
        storage = JournalStorage(backend)
        storage.get_all_studies()  # reads the log now: a file of something else fails here, not later
        return storage
    except ValueError as err:  # json.JSONDecodeError: the file holds something else
        raise ValueError(f"{str(path)!r} is not an Optuna journal file ({err}); give another journal:PATH") from err
    except OSError as err:
        raise ValueError(f"cannot open the journal file {str(path)!r}: {err.strerror or err}") from err


def _check_journal_file(path: Path) -> None:
    """Raise ``ValueError`` unless ``path`` is missing, empty, or starts like an Optuna journal (one
    JSON operation per line). Optuna forgives a bad last line (a write cut short), so a one-line file
    of something else would be accepted, then appended to."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as file:
        first = file.readline(1 << 20)
    if not first.endswith(b"\n") and first.startswith(JOURNAL_RECORD_START):
        return  # a journal whose only record was cut short; opening it drops that record
    try:
        operation = json.loads(first)
    except ValueError as err:
        raise ValueError(f"its first line is not JSON: {err}") from err
    if not isinstance(operation, dict) or "op_code" not in operation:
        raise ValueError("its first line is not an Optuna journal operation")


#: Attempts to open an RDB storage while concurrent workers may be creating its tables.
_CREATE_ATTEMPTS = 5


def _rdb_storage(
    url: str, heartbeat_interval: int | None, grace_period: int | None, max_retry: int | None
) -> BaseStorage:
    from sqlalchemy.exc import DBAPIError

    parsed = parse_database_url(url, what="storage")
    engine_kwargs: dict[str, object] = {}
    if parsed.get_backend_name() == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": 60}
        if is_sqlite_memory(parsed):
            # One process, one connection per thread, one database per connection: nobody can
            # share it, and the heartbeat thread would not even see the tables.
            heartbeat_interval = None
        make_sqlite_folder(parsed, what="storage")

    kwargs: dict[str, object] = {}
    if heartbeat_interval is not None:
        kwargs["heartbeat_interval"] = heartbeat_interval
        kwargs["grace_period"] = grace_period
        kwargs.update(retry_stale_trials(max_retry))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                return optuna.storages.RDBStorage(full_text(parsed), engine_kwargs=engine_kwargs, **kwargs)  # type: ignore[arg-type]
            except DBAPIError as exc:
                # Several workers opening a fresh database create its tables at once; on PostgreSQL
                # one's CREATE TABLE (or schema-version row) then collides with another's. Retry.
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise ValueError(f"cannot open the storage {describe(parsed)}: {error_text(exc)}") from exc
                time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")
