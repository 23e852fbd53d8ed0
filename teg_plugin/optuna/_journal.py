"""A journal-file Optuna storage that never appends onto a record cut short.

Optuna's journal file holds one JSON operation per line. A process killed while writing, or a full
disk, can leave the last line without its end; Optuna skips that line when reading, but the next
append would glue a new record onto it, and from then on the whole file is unreadable. Here every
append first drops such a cut-off tail, under the journal's own file lock (so never while a live
writer is half-way through a line), and says in one warning what was dropped. Complete lines are
never touched.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

_logger = logging.getLogger(__name__)

#: How every Optuna journal record starts (``json.dumps`` of a dict whose first key is ``op_code``).
JOURNAL_RECORD_START = b'{"op_code":'
#: Bytes read per step while looking backwards for the last line end.
_CHUNK = 1 << 16


def drop_cut_off_record(path: str | os.PathLike[str]) -> str | None:
    """Remove a last line of the journal file ``path`` that lacks its line end; say what was removed.

    Nothing changes when the file is missing, empty, ends with a line end, or is no journal (its
    last line end would be its first, and the cut-off part does not start like a journal record).
    Call it while holding the journal's lock, or while no process writes the file.

    Returns:
        ``None`` when nothing was removed, else a one-line description of what was.
    """
    with open(path, "r+b") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return None
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return None
        keep = _after_last_newline(file, size)
        file.seek(keep)
        tail = file.read(min(size - keep, 200))
        if keep == 0 and not tail.startswith(JOURNAL_RECORD_START):
            return None  # one line of something that is not a journal: not ours to shorten
        file.truncate(keep)
        file.flush()
        os.fsync(file.fileno())
        kept = _count_lines(file, keep)
    return (
        f"the journal file {os.fspath(path)!r} ended in a record cut short (a process killed while writing it, "
        f"or a full disk): removed that partial record ({size - keep} bytes, {_describe(tail)}); "
        f"the {kept} complete record(s) before it are kept"
    )


def _after_last_newline(file: Any, size: int) -> int:
    """The offset just after the file's last ``\\n`` (0 when it has none)."""
    end = size
    while end > 0:
        start = max(0, end - _CHUNK)
        file.seek(start)
        found = file.read(end - start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0


def _count_lines(file: Any, size: int) -> int:
    file.seek(0)
    count = 0
    remaining = size
    while remaining > 0:
        block = file.read(min(_CHUNK, remaining))
        count += block.count(b"\n")
        remaining -= len(block)
    return count


def _describe(tail: bytes) -> str:
    """What a cut-off record was about: its operation and trial, as far as they are still there."""
    from teg_plugin.optuna._compat import journal_operation_name

    op = re.match(rb'\{"op_code":(\d+)', tail)
    if op is None:
        return "not readable"
    what = journal_operation_name(int(op.group(1))) or f"op_code {int(op.group(1))}"
    trial = re.search(rb'"trial_id":(\d+)', tail)
    return f"{what} of trial id {int(trial.group(1))}" if trial else what


class RepairingJournalBackend(JournalFileBackend):
    """Optuna's :class:`~optuna.storages.journal.JournalFileBackend` whose appends first drop a
    cut-off last record (:func:`drop_cut_off_record`), each time under the journal's lock: a record
    cut by a worker killed mid-write, even while this process runs, never spoils later ones."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._append_lock = JournalFileSymlinkLock(str(path))
        super().__init__(str(path), lock_obj=self._append_lock)

    def drop_cut_off_record(self) -> None:
        """Drop a cut-off last record now (under the journal's lock), with one warning if there was one."""
        self._append_lock.acquire()  # blocks until held (a dead holder's lock is broken after 30 s)
        try:
            self._drop_cut_off_record()
        finally:
            self._append_lock.release()

    def _drop_cut_off_record(self) -> None:
        dropped = drop_cut_off_record(self._path)
        if dropped is not None:
            _logger.warning("teg-plugin: warning: %s", dropped)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self._append_lock.acquire()
        try:
            self._drop_cut_off_record()
            lines = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
            with open(self._path, "ab") as file:
                file.write(lines.encode("utf-8"))
                file.flush()
                os.fsync(file.fileno())
        finally:
            self._append_lock.release()
