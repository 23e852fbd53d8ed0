"""Errors raised while loading datasets."""

from __future__ import annotations


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are not where the loader looked for them (or fail their integrity check).

    The message always says where the loader looked and how to fix it (a download flag, or where to
    put the files).
    """
