"""Adversarial input and faults (issue 25): no stale or damaged file, odd flag or huge input may lose a
study, end in a traceback, or win a ranking it did not earn."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import struct
import zlib
from pathlib import Path

import numpy as np
import optuna
import pytest

from teg_plugin.cache import CacheKey, ScoreCache
from teg_plugin.cli import main
from teg_plugin.data import load_data
from teg_plugin.data.errors import DataNotFoundError
from teg_plugin.scores import TEGScore
from teg_plugin.spaces.nb201 import NB201Space

FAST = ["--dataset", "synthetic", "--repeat", "1", "--batch-size", "8", "--quiet"]
SPACE = NB201Space()
README = Path(__file__).resolve().parents[1] / "README.md"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    assert err.startswith("teg-nas: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err, err


def _teg_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("teg_plugin")]


# --- 1. a journal whose last record was cut short -------------------------------------------------


def test_a_journal_cut_mid_record_resumes_and_keeps_every_complete_record(capsys, caplog, tmp_path) -> None:
    journal = tmp_path / "j.log"
    base = ["search", *FAST, "--no-cache", "--storage", f"journal:{journal}", "--study-name", "jt"]
    code, _, err = _run(capsys, *base, "--budget", "2")
    assert code == 0, err
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    def load() -> list[optuna.trial.FrozenTrial]:
        return optuna.load_study(study_name="jt", storage=JournalStorage(JournalFileBackend(str(journal)))).trials

    before = load()
    with journal.open("r+b") as file:  # a crash (or a full disk) in the middle of the last record
        file.truncate(journal.stat().st_size - 60)
    complete = journal.read_bytes().count(b"\n")
    with caplog.at_level(logging.WARNING):
        code, out, err = _run(capsys, *base, "--budget", "3")
    assert code == 0, err
    warnings = [w for w in _teg_warnings(caplog) if "cut short" in w]
    assert len(warnings) == 1 and "\n" not in warnings[0] and f"the {complete} complete record(s)" in warnings[0]
    after = load()  # Optuna alone reads the whole file again
    assert [t.state for t in after] == [optuna.trial.TrialState.COMPLETE] * 3
    for old, new in zip(before, after):
        assert (old.params, old.user_attrs, old.values) == (new.params, new.user_attrs, new.values)
    assert journal.read_bytes().endswith(b"\n")
    code, _, err = _run(capsys, *base, "--budget", "4")  # and it stays usable
    assert code == 0 and len(load()) == 4, err


def test_only_a_cut_off_journal_record_is_dropped(tmp_path) -> None:
    from teg_plugin.optuna._journal import drop_cut_off_record

    journal = tmp_path / "j.log"
    records = b'{"op_code":0,"study_name":"a"}\n{"op_code":4,"study_id":0}\n'
    journal.write_bytes(records + b'{"op_code":8,"trial_id":7,"user_attr":{"arch":"|nor_co')
    message = drop_cut_off_record(journal)
    assert journal.read_bytes() == records
    assert message is not None and "set_trial_user_attr of trial id 7" in message and "2 complete record(s)" in message
    assert drop_cut_off_record(journal) is None and journal.read_bytes() == records  # complete: untouched
    other = tmp_path / "notes.txt"
    other.write_bytes(b"not a journal, and no line end")
    assert drop_cut_off_record(other) is None and other.read_bytes() == b"not a journal, and no line end"


# --- 2. repeated flags ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["--index", "1", "--index", "2"], ["--index", "1", "2"], ["--index", "1", "--index", "2", "3"]],
)
def test_a_repeated_index_flag_keeps_every_value(capsys, argv: list[str]) -> None:
    code, out, err = _run(capsys, "score", *argv, *FAST, "--no-cache", "--format", "json")
    assert code == 0, err
    expected = [int(a) for a in argv if a != "--index"]
    assert [row["index"] for row in json.loads(out)] == expected


def test_a_repeated_arch_flag_keeps_every_value(capsys) -> None:
    a, b, c = (SPACE.format(SPACE.arch_at(i)) for i in (1, 2, 3))
    code, out, err = _run(capsys, "score", "--arch", a, "--arch", b, c, *FAST, "--no-cache", "--format", "json")
    assert code == 0, err
    assert [row["arch"] for row in json.loads(out)] == [a, b, c]


# --- 3. damaged files and oversized input: one line, exit 2 -----------------------------------------


def _damage_middle(path: Path) -> None:
    """Overwrite every page but the first (the header and schema) and the last with garbage."""
    data = bytearray(path.read_bytes())
    assert len(data) >= 3 * 4096
    data[4096:-4096] = b"\xff" * (len(data) - 2 * 4096)
    path.write_bytes(bytes(data))


def _damage_tables(path: Path, *tables: str) -> None:
    """Overwrite the first page of each of ``tables`` with garbage (the rest of the file stays intact)."""
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (t,)).fetchone()[0] for t in tables]
    conn.close()
    with path.open("r+b") as file:
        for page in pages:
            file.seek((page - 1) * page_size)
            file.write(b"\xff" * page_size)


def test_a_storage_damaged_in_the_middle_is_one_line(capsys, tmp_path) -> None:
    storage = tmp_path / "s.db"
    base = ["search", *FAST, "--no-cache", "--storage", f"sqlite:///{storage}", "--study-name", "st"]
    code, _, err = _run(capsys, *base, "--budget", "2")
    assert code == 0, err
    _damage_tables(storage, "trial_values", "trial_params")  # it opens; reading its trials fails
    code, out, err = _run(capsys, *base, "--budget", "3")
    _one_error_line(code, err, "malformed")
    assert "storage" in err and "invalid data in the commit" not in err


def test_a_score_cache_damaged_in_the_middle_is_one_line(capsys, tmp_path) -> None:
    cache = tmp_path / "c.db"
    ScoreCache(cache).close()
    with sqlite3.connect(cache) as conn:  # grow the table past one page, so that its pages can be damaged
        conn.execute("CREATE INDEX filler_index ON teg_scores (arch)")
        conn.executemany(
            "INSERT INTO teg_scores VALUES (?, 's', ?, 'f', 2.0, 2.0, 1.0, 0, NULL, 0.0, '2026-01-01')",
            [(f"k{i}", "x" * 200) for i in range(100)],
        )
    conn.close()
    _damage_middle(cache)
    code, out, err = _run(capsys, "score", "--index", "1", *FAST, "--cache", str(cache))
    _one_error_line(code, err, "score cache")
    assert "malformed" in err or "not a database" in err


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG file whose header claims ``width`` x ``height`` pixels (its data is a few bytes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [100_000, 14_000])  # over twice Pillow's limit (its error), and over it (its warning)
def test_an_image_claiming_a_huge_size_is_one_line(capsys, tmp_path, side: int) -> None:
    from PIL import Image

    folder = tmp_path / "images"
    for cls in ("cat", "dog"):
        (folder / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(folder / cls / "ok.png")
    (folder / "dog" / "bomb.png").write_bytes(_png_claiming(side, side))
    code, out, err = _run(
        capsys,
        "score",
        "--index",
        "1",
        "--dataset",
        str(folder),
        "--repeat",
        "1",
        "--batch-size",
        "8",
        "--quiet",
        "--no-cache",
    )
    _one_error_line(code, err, "bomb.png")
    assert "safety limit" in err


@pytest.mark.parametrize(
    "concat", ["range(2, 1000000000000)", "range(2, 6, 0)", "range(2, 10000000000000000000000000000000)"]
)
def test_a_darts_genotype_with_a_huge_concat_is_one_line(capsys, concat: str) -> None:
    genotype = f"Genotype(normal=[], normal_concat={concat}, reduce=[], reduce_concat=[2, 3, 4, 5])"
    code, out, err = _run(capsys, "score", "--space", "darts", "--arch", genotype, *FAST, "--no-cache")
    _one_error_line(code, err, "normal_concat")


def _score_into(capsys, cache: Path, *indices: int) -> None:
    code, _, err = _run(
        capsys, "score", "--index", *map(str, indices), *FAST, "--cache", str(cache), "--format", "json"
    )
    assert code == 0, err


def _tamper(cache: Path, arch_index: int, **columns: object) -> None:
    text = SPACE.format(SPACE.canonical(SPACE.arch_at(arch_index)))
    with sqlite3.connect(cache) as conn:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        changed = conn.execute(
            f"UPDATE teg_scores SET {assignments} WHERE arch = ?", [*columns.values(), text]
        ).rowcount
    conn.close()
    assert changed == 1


def test_a_cache_row_whose_reason_is_a_blob_is_scored_again(capsys, caplog, tmp_path) -> None:
    cache = tmp_path / "c.db"
    _score_into(capsys, cache, 1)
    _tamper(cache, 1, reason=b"\x00\xffbinary")
    with caplog.at_level(logging.WARNING):
        code, out, err = _run(capsys, "score", "--index", "1", *FAST, "--cache", str(cache), "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["bad"] is False and row["seconds"] > 0  # measured again
    assert len([w for w in _teg_warnings(caplog) if "invalid" in w]) == 1
    with sqlite3.connect(cache) as conn:
        assert conn.execute("SELECT typeof(reason) FROM teg_scores").fetchall() == [("null",)]  # replaced
    conn.close()


# --- 4. values read from the cache are checked like measured ones -----------------------------------


def test_impossible_cached_values_are_scored_again_not_ranked_first(capsys, caplog, tmp_path) -> None:
    cache = tmp_path / "c.db"
    _score_into(capsys, cache, 1, 6111)
    code, out, err = _run(capsys, "score", "--index", "1", "6111", *FAST, "--no-cache", "--format", "json")
    fresh = json.loads(out)
    _tamper(cache, 1, ntk_cond=-5.0, regions=-3.0, kr_mse=-1e308)  # would win every indicator
    with caplog.at_level(logging.WARNING):
        code, out, err = _run(capsys, "score", "--index", "1", "6111", *FAST, "--cache", str(cache), "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(rows) == strip(fresh)  # the tampered row neither served nor ranked
    assert rows[0]["seconds"] > 0 and rows[1]["seconds"] == 0  # only the invalid one measured again
    warnings = [w for w in _teg_warnings(caplog) if "invalid" in w]
    assert len(warnings) == 1 and "ntk_cond -5.0" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # overwritten: the next run reads it, silently
        code, out, err = _run(capsys, "score", "--index", "1", "6111", *FAST, "--cache", str(cache), "--format", "json")
    assert [r["seconds"] for r in json.loads(out)] == [0, 0] and not _teg_warnings(caplog)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ((-5.0, 10.0, 0.5, 0, None), "ntk_cond -5.0"),
        ((0.5, 10.0, 0.5, 0, None), "ntk_cond 0.5"),
        ((2.0, 0.0, 0.5, 0, None), "regions 0.0"),
        ((2.0, 10.0, -1e-9, 0, None), "kr_mse -1e-09"),
        ((float("inf"), 10.0, 0.5, 0, None), "ntk_cond inf"),
        ((None, 10.0, 0.5, 0, None), "ntk_cond is None"),
        ((2.0, "many", 0.5, 0, None), "regions is 'many'"),
        ((2.0, 10.0, 0.5, 7, None), "bad is 7"),
        ((2.0, 10.0, 0.5, 1, b"x"), "reason is a bytes"),
        ((None, -3.0, None, 1, "undefined"), "regions -3.0"),
    ],
)
def test_row_problem_names_what_no_measurement_gives(values: tuple, problem: str) -> None:
    from teg_plugin.cache import row_problem

    assert problem in (row_problem(*values) or "")


@pytest.mark.parametrize(
    "values", [(1.0, 1.0, 0.0, 0, None), (3.5, 2543.0, 1.08, False, None), (None, 12.0, float("nan"), 1, "singular")]
)
def test_row_problem_accepts_what_measurements_give(values: tuple) -> None:
    from teg_plugin.cache import row_problem

    assert row_problem(*values) is None


def test_put_replaces_a_row_found_invalid_and_only_that() -> None:
    cache = ScoreCache("sqlite://")
    key, other = CacheKey("s", "a", "f"), CacheKey("s", "b", "f")
    cache.put(key, TEGScore(2.0, 3.0, 1.0))
    cache.put(other, TEGScore(2.0, 3.0, 1.0))
    with cache._engine.begin() as conn:  # noqa: SLF001 - tamper with the stored row
        conn.exec_driver_sql("UPDATE teg_scores SET ntk_cond = -1 WHERE arch = 'a'")
    assert cache.get_many([key, other]).keys() == {other}
    assert cache.put(other, TEGScore(9.0, 9.0, 9.0)) is False  # a valid row is still never overwritten
    assert cache.put(key, TEGScore(4.0, 5.0, 6.0)) is True
    assert cache.get(key) == TEGScore(4.0, 5.0, 6.0) and len(cache) == 2


# --- 5. another program's SQLite file as the cache ------------------------------------------------


def test_another_programs_sqlite_file_is_refused_and_left_unchanged(capsys, tmp_path) -> None:
    foreign = tmp_path / "notes.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("INSERT INTO notes (text) VALUES ('keep me')")
    conn.close()
    digest = hashlib.sha256(foreign.read_bytes()).hexdigest()
    code, out, err = _run(capsys, "score", "--index", "1", *FAST, "--cache", str(foreign))
    _one_error_line(code, err, "tables notes")
    assert hashlib.sha256(foreign.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # no -wal, no -shm
    with sqlite3.connect(foreign) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_an_empty_file_or_an_existing_cache_is_still_accepted(tmp_path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    ScoreCache(empty).put(CacheKey("s", "a", "f"), TEGScore(2.0, 3.0, 1.0))
    assert len(ScoreCache(empty)) == 1  # now a score cache, opened again


# --- 6. an explicit data root that is missing or a file -------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_named_data_root_that_is_missing_or_a_file_is_an_error(capsys, tmp_path, kind: str) -> None:
    root = tmp_path / "data"
    if kind == "file":
        root.write_text("not a folder")
    code, out, err = _run(
        capsys,
        "score",
        "--index",
        "1",
        "--data-root",
        str(root),
        "--repeat",
        "1",
        "--batch-size",
        "8",
        "--quiet",
        "--no-cache",
    )
    _one_error_line(code, err, "does not exist" if kind == "missing" else "is a file")
    with pytest.raises(DataNotFoundError):
        load_data(None, root)


def test_an_existing_data_root_without_cifar_still_falls_back(tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert load_data(None, tmp_path).name == "embedded"


# --- 8. the NNI web UI's exposure is documented -----------------------------------------------------


def test_the_nni_web_ui_exposure_is_documented() -> None:
    readme = README.read_text()
    nni_section = readme[readme.index("## Use with NNI") :]
    nni_section = nni_section[: nni_section.index("\n## ", 1)]
    example = (README.parent / "examples" / "nnictl" / "nb201_teg.yml").read_text()
    guide = (README.parent / "docs" / "nni.md").read_text()
    for text in (nni_section, example, guide):
        assert "every network interface" in text and "SSH tunnel" in text, text[:200]


# --- 9. long input is cut in messages --------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "arch"),
    [
        ("nas-bench-201", "|" + "x" * 10_000 + "~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
        ("nas-bench-201", "|none~0|+" * 5_000),
        (
            "darts",
            f"Genotype(normal={[('y' * 10_000, 0)] + [('sep_conv_3x3', 1)] * 7!r}, reduce={[('sep_conv_3x3', 1)] * 8!r})",
        ),
        ("darts", "Genotype(" + "z" * 10_000 + "=1, normal=[], reduce=[])"),
    ],
)
def test_a_10000_character_arch_is_cut_in_the_message(capsys, space: str, arch: str) -> None:
    code, out, err = _run(capsys, "score", "--space", space, "--arch", arch, *FAST, "--no-cache")
    assert code == 2 and err.count("\n") == 1, err[:500]
    assert len(err) < 500 and "characters)" in err, err


# --- a journal (no heartbeat): a killed worker's trial does not hold the budget up -----------------


def test_a_journal_trial_whose_worker_is_gone_is_failed_at_once(tmp_path, monkeypatch, caplog) -> None:
    import subprocess
    import sys
    import time

    from teg_plugin.optuna import BudgetReached, _budget, create_storage, within_budget
    from teg_plugin.optuna._suggest import suggest

    monkeypatch.setattr(_budget, "_UNEXPIRABLE_WAIT_S", 30.0)
    monkeypatch.setattr(_budget, "_BUDGET_POLL_S", 0.05)
    study = optuna.create_study(storage=create_storage(f"journal:{tmp_path / 'j.log'}"), study_name="j")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = study.ask()  # trial 0, RUNNING in a process that has ended (as a SIGKILLed worker's)
    study._storage.set_trial_system_attr(
        dead._trial_id, "teg:worker", f"{__import__('socket').gethostname()}:{gone.stdout.strip()}:1"
    )
    alive = study.ask()  # trial 1, RUNNING in this live process: never failed
    study._storage.set_trial_system_attr(alive._trial_id, "teg:worker", _budget._this_process())

    def objective(trial: optuna.Trial) -> float:
        suggest(SPACE, trial)
        return 1.0

    start = time.monotonic()
    with caplog.at_level(logging.WARNING):
        study.optimize(within_budget(objective, SPACE, budget=2), n_trials=1, catch=(BudgetReached,))
    assert time.monotonic() - start < 10  # not the 30 s bounded wait
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.COMPLETE]
    assert any("no longer exists" in m and "[0]" in m for m in _teg_warnings(caplog))


# --- 7. SIGTERM: workers stop with the main process, and nothing raises during shutdown ------------


def test_a_search_worker_restores_sigterm_before_the_interpreter_shuts_down(monkeypatch) -> None:
    import argparse
    import signal

    from teg_plugin.cli import _search

    def optimize_then_check(args, *, show_progress, worker):  # noqa: ANN001, ARG001
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # a search stops cleanly on SIGTERM

    monkeypatch.setattr(_search, "_optimize", optimize_then_check)
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        _search._worker(argparse.Namespace())
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # no raising handler left for shutdown
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.slow
def test_sigterm_to_a_search_with_workers_stops_them_all_quietly(tmp_path) -> None:
    """`kill PID` (or `timeout`) reaches only the main process; its workers must stop too, at once,
    each failing its running trial, without a traceback or a C++ abort."""
    import os
    import signal
    import subprocess
    import sys
    import time

    journal = tmp_path / "w.log"
    argv = [
        sys.executable,
        "-m",
        "teg_plugin.cli",
        "search",
        "--workers",
        "2",
        "--storage",
        f"journal:{journal}",
        *FAST,
        "--no-cache",
        "--budget",
        "100000",
    ]
    # Its own session: whatever happens, the whole group (workers included) is killed at the end.
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (journal.exists() and journal.read_text().count('"op_code":6') >= 6):
            time.sleep(0.2)  # until both processes have finished a few trials
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)  # the old code waited for the workers' whole budget
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "terminate called" not in err, err
    assert err.strip().splitlines()[-1] == "teg-nas: interrupted", err
    from teg_plugin.optuna import create_storage

    states = [
        t.state
        for t in optuna.load_study(
            study_name="teg-nas-bench-201-evolution-seed0", storage=create_storage(f"journal:{journal}")
        ).trials
    ]
    assert optuna.trial.TrialState.RUNNING not in states, states
