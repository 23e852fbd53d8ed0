"""A persistent score cache in any SQLAlchemy database (default: a local SQLite file).

Rows are keyed by (space, canonical arch, scoring fingerprint). Writes are insert-if-absent in their
own transaction, so several processes (or machines sharing one PostgreSQL) can fill one cache at once
without losing or overwriting anything: by construction two writers of one key hold equal scores.
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from teg_plugin._database import describe, error_text, is_sqlite_memory, make_sqlite_folder, parse_database_url
from teg_plugin.scores import TEGScore

CACHE_ENV = "TEG_CACHE"

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
        raise ValueError(f"the score cache location {str(path)!r} is a folder: give a file path such as {str(path / 'scores.sqlite')!r}")
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
        is_sqlite = url.get_backend_name() == "sqlite"
        options: dict[str, object] = {}
        if is_sqlite:
            options["connect_args"] = {"timeout": _SQLITE_WAIT_S, "check_same_thread": False}
            if is_sqlite_memory(url):
                options["poolclass"] = sa.pool.StaticPool  # one shared in-memory database
            make_sqlite_folder(url, what="score cache")
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
        """The cached scores among ``keys`` (missing keys are absent from the result)."""
        by_digest = {k.digest: k for k in keys}
        found: dict[CacheKey, TEGScore] = {}
        digests = list(by_digest)
        with self._engine.connect() as conn:
            for start in range(0, len(digests), 500):
                chunk = digests[start : start + 500]
                for row in conn.execute(sa.select(_scores).where(_scores.c.key.in_(chunk))):
                    found[by_digest[row.key]] = TEGScore(
                        ntk_cond=_nan(row.ntk_cond),
                        regions=_nan(row.regions),
                        kr_mse=_nan(row.kr_mse),
                        bad=bool(row.bad),
                        reason=row.reason,
                        seconds=0.0,
                    )
        return found

    def put(self, key: CacheKey, score: TEGScore) -> bool:
        """Store ``score`` unless ``key`` is present; returns whether this call inserted it."""
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
            "created_at": datetime.now(timezone.utc),
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(_scores).values(**row))
        except IntegrityError:
            return False
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

    def put_proxy_value(self, key: CacheKey, name: str, value: float, bad: bool, reason: str | None,
                        seconds: float) -> bool:
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
            "created_at": datetime.now(timezone.utc),
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(_proxy_values).values(**row))
        except IntegrityError:
            return False
        return True

    def __len__(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(_scores)).scalar_one())

    def close(self) -> None:
        self._engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
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
