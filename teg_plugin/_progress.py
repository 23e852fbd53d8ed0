"""The progress bar of long loops: tqdm on stderr, or nothing."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int, enabled: bool, desc: str, unit: str, *, initial: int = 0) -> Any:
    """A tqdm bar on stderr counting from ``initial`` (work done before, e.g. a resumed search's
    trials) to ``total``, or ``None`` when disabled or there is nothing to count."""
    if not enabled or total < 1:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
