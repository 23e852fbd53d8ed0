"""The fault-injection benchmark, short: ``teg-nas search`` workers SIGKILLed at random and restarted
must leave exactly the budget of trials, none lost or duplicated, and an intact score cache.

The full run (K=4, budget 100, a kill every ~20 s) and its figures are in docs/reliability.md; this
is the same command with a reduced protocol, a small budget and a few kills. The PostgreSQL run is in
tests/test_postgres.py, beside the server it needs.
"""

from __future__ import annotations

import sqlite3

import pytest

from teg_plugin.cli import main

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_killed_workers_lose_and_duplicate_nothing(capsys, tmp_path, run_short_faults, storage: str) -> None:
    code, report, err = run_short_faults(capsys, storage, tmp_path)
    assert code == (0 if report["ok"] else 1), err
    assert report["kills"] == 2 and report["restarts"] == 2
    assert report["counted"] == 16 and report["duplicates"] == 0 and report["lost"] == 0
    assert report["bad_attributes"] == 0 and report["worker_errors"] == [] and not report["timed_out"]
    assert report["cache_integrity"] == "ok" and report["invalid_cache_rows"] == 0 and report["cache_rows"] >= 16
    assert report["ok"] is True
    (cache,) = tmp_path.glob("*-cache.sqlite")  # checked here too, independently of the benchmark's own check
    with sqlite3.connect(cache) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_the_checks_can_fail(capsys, tmp_path, run_short_faults) -> None:
    """A study that ends short of its budget (here: the workers stopped by a timeout) is reported."""
    code, report, _ = run_short_faults(capsys, "sqlite", tmp_path, "--timeout", "1")
    assert code == 1 and report["ok"] is False and report["timed_out"] is True and report["counted"] < 16


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--kill-every", "0"], "--kill-every and --timeout"),
        (["--cache", "x.db"], "fresh SQLite score cache"),
    ],
)
def test_bad_options_are_one_line(capsys, tmp_path, argv: list[str], needle: str) -> None:
    code = main(["bench", "faults", "--workdir", str(tmp_path / "w"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "w").exists()  # refused before anything starts


def test_a_password_in_the_storage_url_is_not_reported() -> None:
    from teg_plugin._database import hide_password

    assert hide_password("postgresql://teg:s3cret@127.0.0.1:5432/db") == "postgresql://teg:***@127.0.0.1:5432/db"
    assert hide_password("journal:/tmp/x.log") == "journal:/tmp/x.log"
