"""SQLAlchemy URLs given by users (score cache, Optuna storage): parsing, driver choice, error messages.

One place decides what ``postgresql://...`` means, so that the score cache and the Optuna storage
accept exactly the same URLs and fail with the same clear messages.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError

#: PostgreSQL drivers a bare ``postgresql://`` URL may use, in order of preference. SQLAlchemy's
#: own default differs between versions (psycopg2 in 2.0, psycopg 3 in 2.1); we take the one that
#: is installed. The ``postgres`` extra installs psycopg 3.
POSTGRES_DRIVERS = ("psycopg", "psycopg2")

#: How to install a PostgreSQL driver.
POSTGRES_INSTALL_HINT = "pip install 'teg-plugin[postgres]'"

URL_EXAMPLES = "'sqlite:///teg-nas.db' or 'postgresql://user:password@host/database'"

#: The Optuna storage of ``teg-nas search`` and ``create_storage()`` without a URL: a SQLite file in
#: the working directory.
DEFAULT_STORAGE_URL = "sqlite:///teg-nas.db"

#: Prefix of a journal-file Optuna storage (``journal:PATH``), the one storage that is not a URL.
JOURNAL_PREFIX = "journal:"


def journal_path(storage: str) -> str | None:
    """The file of a ``journal:PATH`` storage, ``None`` for any other storage."""
    return storage[len(JOURNAL_PREFIX) :] if storage.startswith(JOURNAL_PREFIX) else None


class MissingDriverError(ImportError):
    """The database a URL names needs a driver that is not installed (the message says how to install it)."""


def parse_database_url(text: str, *, what: str) -> sa.URL:
    """``text`` as a SQLAlchemy URL whose driver is installed.

    A bare ``postgresql://`` (or ``postgres://``) URL gets the first installed driver of
    :data:`POSTGRES_DRIVERS`; an explicit ``postgresql+driver://`` is kept as written.

    Args:
        text: the URL.
        what: what the URL is for, used in messages (``"score cache"``, ``"storage"``).

    Raises:
        ValueError: ``text`` is not a URL SQLAlchemy understands, or names an unknown database.
        MissingDriverError: ``text`` names PostgreSQL and no driver for it is installed.
    """
    try:
        url = sa.engine.make_url(text)
    except ArgumentError as exc:
        raise ValueError(f"malformed {what} URL {text!r}: expected a SQLAlchemy URL such as {URL_EXAMPLES}") from exc
    if url.drivername in ("postgresql", "postgres"):
        for driver in POSTGRES_DRIVERS:
            if importlib.util.find_spec(driver) is not None:
                return url.set(drivername=f"postgresql+{driver}")
        raise MissingDriverError(
            f"the {what} {describe(url)} is a PostgreSQL database but no PostgreSQL driver is installed: "
            f"{POSTGRES_INSTALL_HINT}"
        )
    try:
        dialect = url.get_dialect()
    except sa.exc.NoSuchModuleError as exc:
        raise ValueError(
            f"unknown database in {what} URL {describe(url)}: expected a SQLAlchemy URL such as {URL_EXAMPLES}"
        ) from exc
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise MissingDriverError(f"the driver of the {what} {describe(url)} is not installed: {exc}") from exc
    return url


def describe(url: sa.URL) -> str:
    """``url`` for messages, its password hidden."""
    return repr(url.render_as_string(hide_password=True))


def hide_password(location: str) -> str:
    """A storage or cache location (a URL, ``journal:PATH`` or a file path) for messages and reports,
    with any password in it hidden."""
    if "://" not in location:
        return location
    try:
        return sa.engine.make_url(location).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL after all: as given
        return location


def full_text(url: sa.URL) -> str:
    """``url`` as text with its password (for libraries that take a URL string)."""
    return url.render_as_string(hide_password=False)


def is_sqlite_memory(url: sa.URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database (which no other process can share)."""
    return url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:")


def make_sqlite_folder(url: sa.URL, *, what: str) -> None:
    """Create the folder of a SQLite file URL if it is missing (SQLite creates the file, not its folder)."""
    if (
        url.get_backend_name() != "sqlite"
        or is_sqlite_memory(url)
        or url.database is None
        or url.database.startswith("file:")
    ):
        return
    folder = Path(url.database).expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"cannot create the folder {str(folder)!r} of the {what} {describe(url)}: {exc.strerror or exc}"
        ) from exc


def error_text(exc: BaseException) -> str:
    """A database error on one line: the driver's own message (``exc.orig``) when there is one."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split())


def database_failure(exc: BaseException) -> str | None:
    """The driver's one-line message when ``exc`` is, or was raised because of, a database error
    (Optuna wraps them, e.g. in a ``StorageInternalError`` blaming "invalid data in the commit");
    ``None`` for any other error. A damaged file's message gets a hint."""
    import sqlite3

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (sa.exc.DBAPIError, sqlite3.DatabaseError)):
            text = error_text(current)
            if "malformed" in text or "not a database" in text:
                text += " (the file is damaged: restore it from a copy, or start afresh in another file)"
            return text
        current = current.__cause__ or current.__context__
    return None
