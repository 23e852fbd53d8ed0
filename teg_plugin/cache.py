"""A persistent score cache in any SQLAlchemy database (default: a local SQLite file).

Rows are keyed by (space, canonical arch, scoring fingerprint). Writes are insert-if-absent in their
own transaction, so several processes (or machines sharing one PostgreSQL) can fill one cache at once
without losing or overwriting anything: by construction two writers of one key hold equal scores.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from teg_plugin._database import (
    database_failure,
    describe,
    error_text,
    is_sqlite_memory,
    make_sqlite_folder,
    parse_database_url,
)
from teg_plugin.scores import TEGScore

CACHE_ENV = "TEG_CACHE"

_logger = logging.getLogger(__name__)

_metadata = sa.MetaData()
_scores = sa.Table(
    "teg_scores",
    _metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("space", sa.String(64), nullable=False),
    sa.Column("arch", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("ntk_cond", sa.Float, nullable=True),
    sa.Column("regions", sa.Float, nullable=True),
    sa.Column("kr_mse", sa.Float, nullable=True),
    sa.Column("bad", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


#: Zero-cost proxy values (teg_plugin.proxies), one row per (space, arch, fingerprint, proxy): asking
#: for one more proxy later computes only that one.
_proxy_values = sa.Table(
    "teg_proxy_values",
    _metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("space", sa.String(64), nullable=False),
    sa.Column("arch", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(128), nullable=False),
    sa.Column("proxy", sa.String(64), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("bad", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


class CachedProxy(NamedTuple):
    """A cached proxy value (``value`` NaN when ``bad``)."""

    value: float
    bad: bool
    reason: str | None


@dataclass(frozen=True)
class CacheKey:
    """What a cached score is valid for: a space, a canonical arch text, and the scoring fingerprint."""

    space: str
    arch: str
    fingerprint: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.space}\x1f{self.arch}\x1f{self.fingerprint}".encode()).hexdigest()


def default_cache_url() -> str:
    """``$TEG_CACHE`` if set, else a SQLite file under the user cache folder."""
    if os.environ.get(CACHE_ENV):
        return _as_url(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return _as_url(base / "teg-plugin" / "scores.sqlite")


def check_cache_location(location: str | os.PathLike[str]) -> None:
    """Raise what :class:`ScoreCache` would for a malformed ``location``, without opening it
    (``ValueError``, or :class:`~teg_plugin._database.MissingDriverError` for a missing driver)."""
    parse_database_url(_as_url(location), what="score cache")


def _as_url(location: str | os.PathLike[str]) -> str:
    text = os.fspath(location)
    if "://" in text:
        return text
    if not text.strip():
        raise ValueError("the score cache location is empty: give a file path or a SQLAlchemy URL, or --no-cache")
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        raise ValueError(
            f"the score cache location {str(path)!r} is a folder: give a file path such as {str(path / 'scores.sqlite')!r}"
        )
    return f"sqlite:///{path}"


#: Seconds a SQLite cache connection waits for the database (busy timeout), and for its switch to WAL.
_SQLITE_WAIT_S = 60


class ScoreCache:
    """Cached :class:`TEGScore` values.

    Args:
        location: a SQLAlchemy URL (``postgresql://...``, ``sqlite:///...``) or a file path
            (a SQLite file, created with its folder if missing). ``None``: :func:`default_cache_url`.

    Example:
        >>> cache = ScoreCache("sqlite://")  # in memory
        >>> key = CacheKey("nas-bench-201", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "f")
        >>> cache.get(key) is None
        True
    """

    def __init__(self, location: str | os.PathLike[str] | None = None) -> None:
        #: The cache's SQLAlchemy URL, as given (with its password, if any).
        self.url = default_cache_url() if location is None else _as_url(location)
        url = parse_database_url(self.url, what="score cache")
        self._url = url
        self._invalid: set[str] = set()  # digests of rows get_many found invalid: put replaces them
        is_sqlite = url.get_backend_name() == "sqlite"
        options: dict[str, object] = {}
        if is_sqlite:
            options["connect_args"] = {"timeout": _SQLITE_WAIT_S, "check_same_thread": False}
            if is_sqlite_memory(url):
                options["poolclass"] = sa.pool.StaticPool  # one shared in-memory database
            make_sqlite_folder(url, what="score cache")
            _refuse_foreign_sqlite(url)  # before anything connects: the connection switches the file to WAL
        self._engine = sa.create_engine(url, **options)
        if is_sqlite:
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        try:
            _metadata.create_all(self._engine, checkfirst=True)
        except sa.exc.DBAPIError as exc:
            # Several processes opening one fresh cache at once: another one created the table
            # between our check and our CREATE TABLE. Only a missing table is an error.
            try:
                created = sa.inspect(self._engine).has_table(_scores.name)
            except sa.exc.DBAPIError:
                created = False
            if not created:
                self._engine.dispose()
                raise ValueError(f"cannot open the score cache {describe(url)}: {error_text(exc)}") from exc
        with self._failures():
            columns = {column["name"] for column in sa.inspect(self._engine).get_columns(_scores.name)}
        if not {column.name for column in _scores.columns} <= columns:
            self._engine.dispose()
            raise ValueError(
                f"the score cache {describe(url)} holds a {_scores.name} table of another layout (columns "
                f"{', '.join(sorted(columns))}), not teg-plugin's: give another cache file or URL"
            )

    def get(self, key: CacheKey) -> TEGScore | None:
        """The cached score for ``key``, or ``None``."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[CacheKey]) -> dict[CacheKey, TEGScore]:
        """The cached scores among ``keys`` (missing keys are absent from the result).

        A row is checked as a fresh measurement would be (:func:`row_problem`); an invalid one (a
        damaged or tampered file) counts as missing, one warning says how many there were, and the
        next :meth:`put` of its key replaces it.
        """
        by_digest = {k.digest: k for k in keys}
        found: dict[CacheKey, TEGScore] = {}
        invalid: list[tuple[CacheKey, str]] = []
        digests = list(by_digest)
        with self._failures(), self._engine.connect() as conn:
            for start in range(0, len(digests), 500):
                chunk = digests[start : start + 500]
                for row in conn.execute(sa.select(_scores).where(_scores.c.key.in_(chunk))):
                    key = by_digest[row.key]
                    problem = row_problem(row.ntk_cond, row.regions, row.kr_mse, row.bad, row.reason)
                    if problem is None:
                        found[key] = TEGScore(
                            _nan(row.ntk_cond),
                            _nan(row.regions),
                            _nan(row.kr_mse),
                            bad=bool(row.bad),
                            reason=row.reason,
                            seconds=0.0,
                        )
                    else:
                        invalid.append((key, problem))
                        self._invalid.add(row.key)
        if invalid:
            key, problem = invalid[0]
            _logger.warning(
                "teg-plugin: warning: %d score(s) in the score cache %s are invalid (e.g. %s, for %s); they are "
                "scored again and replaced",
                len(invalid),
                describe(self._url),
                problem,
                _clip(key.arch),
            )
        return found

    def put(self, key: CacheKey, score: TEGScore) -> bool:
        """Store ``score`` unless ``key`` is present; returns whether this call inserted it. A row that
        :meth:`get_many` found invalid is replaced."""
        row = {
            "key": key.digest,
            "space": key.space,
            "arch": key.arch,
            "fingerprint": key.fingerprint,
            "ntk_cond": _none(score.ntk_cond),
            "regions": _none(score.regions),
            "kr_mse": _none(score.kr_mse),
            "bad": score.bad,
            "reason": score.reason,
            "seconds": score.seconds,
            "created_at": datetime.now(UTC),
        }
        try:
            with self._failures(), self._engine.begin() as conn:
                if key.digest in self._invalid:  # another process may replace it too: with equal values
                    conn.execute(sa.delete(_scores).where(_scores.c.key == key.digest))
                conn.execute(sa.insert(_scores).values(**row))
        except IntegrityError:
            return False
        finally:
            self._invalid.discard(key.digest)
        return True

    def get_proxy_values(self, keys: Iterable[tuple[CacheKey, str]]) -> dict[tuple[CacheKey, str], CachedProxy]:
        """The cached values among ``(key, proxy name)`` pairs (missing pairs are absent)."""
        by_digest = {_proxy_digest(key, name): (key, name) for key, name in keys}
        found: dict[tuple[CacheKey, str], CachedProxy] = {}
        digests = list(by_digest)
        with self._engine.connect() as conn:
            for start in range(0, len(digests), 500):
                chunk = digests[start : start + 500]
                for row in conn.execute(sa.select(_proxy_values).where(_proxy_values.c.key.in_(chunk))):
                    found[by_digest[row.key]] = CachedProxy(_nan(row.value), bool(row.bad), row.reason)
        return found

    def put_proxy_value(
        self, key: CacheKey, name: str, value: float, bad: bool, reason: str | None, seconds: float
    ) -> bool:
        """Store proxy ``name``'s value for ``key`` unless present; returns whether this call inserted it."""
        row = {
            "key": _proxy_digest(key, name),
            "space": key.space,
            "arch": key.arch,
            "fingerprint": key.fingerprint,
            "proxy": name,
            "value": _none(value),
            "bad": bad,
            "reason": reason,
            "seconds": seconds,
            "created_at": datetime.now(UTC),
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(_proxy_values).values(**row))
        except IntegrityError:
            return False
        return True

    def __len__(self) -> int:
        with self._failures(), self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(_scores)).scalar_one())

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """Turn a database error (a damaged file, a lost server) into one clear ``ValueError``;
        a duplicate key (``IntegrityError``) passes through for :meth:`put`."""
        try:
            yield
        except IntegrityError:
            raise
        except sa.exc.DBAPIError as exc:
            raise ValueError(f"the score cache {describe(self._url)} failed: {database_failure(exc)}") from exc


#: The smallest value each indicator takes when measured: κ = λmax/λmin >= 1, at least one
#: activation pattern, and a mean squared error >= 0.
_INDICATOR_MINIMUM = {"ntk_cond": 1.0, "regions": 1.0, "kr_mse": 0.0}


def row_problem(ntk_cond: object, regions: object, kr_mse: object, bad: object, reason: object) -> str | None:
    """What makes a stored score impossible as a measurement, or ``None`` if nothing does.

    A good score has every indicator a finite number at or above its minimum (κ >= 1, regions >= 1,
    MSE >= 0); a bad one may have undefined (``NULL``/NaN) indicators, but no impossible defined one.
    ``bad`` is a boolean and ``reason`` text or ``NULL`` (SQLite stores whatever a writer gave).
    """
    if isinstance(bad, bool) or bad in (0, 1):
        bad = bool(bad)
    else:
        return f"bad is {_clip(repr(bad))}"
    if reason is not None and not isinstance(reason, str):
        return f"reason is a {type(reason).__name__}, not text"
    for name, value in zip(_INDICATOR_MINIMUM, (ntk_cond, regions, kr_mse)):
        if value is None and bad:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name} is {_clip(repr(value))}"
        if math.isnan(value) and bad:
            continue
        if not math.isfinite(value) or value < _INDICATOR_MINIMUM[name]:
            return f"{name} {value!r} (a measured one is finite and >= {_INDICATOR_MINIMUM[name]:g})"
    return None


def _refuse_foreign_sqlite(url: sa.URL) -> None:
    """Raise ``ValueError`` when ``url`` names an existing, non-empty SQLite file that is not a score
    cache (another program's database): it is read only, never changed."""
    if is_sqlite_memory(url) or url.database is None or url.database.startswith("file:"):
        return
    path = Path(url.database).expanduser()
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except (OSError, sqlite3.Error):
        return  # the usual opening reports what is wrong
    try:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc) or "malformed" in str(exc):
            raise ValueError(
                f"cannot open the score cache {describe(url)}: {exc} (give another cache file or URL, or --no-cache)"
            ) from exc
        return
    finally:
        conn.close()
    if tables and _scores.name not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise ValueError(
            f"the score cache {describe(url)} is a SQLite database of something else (tables {shown}), not a "
            "score cache; it was left unchanged: give another cache file or URL"
        )


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    # The busy timeout makes writers queue, not fail; WAL lets readers and one writer work at once.
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_WAIT_S * 1000}")
    # Switching a fresh file to WAL needs it alone for a moment, and SQLite answers "database is
    # locked" at once, without the busy timeout, to connections racing to do the same: retry.
    deadline = time.monotonic() + _SQLITE_WAIT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cursor.close()


def _proxy_digest(key: CacheKey, name: str) -> str:
    return hashlib.sha256(f"{key.digest}\x1fproxy\x1f{name}".encode()).hexdigest()


def _none(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
