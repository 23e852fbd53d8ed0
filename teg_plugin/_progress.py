"""The progress bar of long loops: tqdm on stderr, or nothing."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int, enabled: bool, desc: str, unit: str) -> Any:
    """A tqdm bar on stderr counting to ``total``, or ``None`` when disabled or there is nothing to count."""
    if not enabled or total < 1:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
