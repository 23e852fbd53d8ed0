"""Argument checks for public APIs: one clear error at the boundary, never a late one from deep inside."""

from __future__ import annotations

import math
import numbers
import operator


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """``value`` as an ``int`` (a Python or numpy integer; not a bool, float or str).

    Raises:
        TypeError: ``value`` is not an integer.
        ValueError: it is below ``minimum``.

    Example:
        >>> check_int("population_size", 3, minimum=1)
        3
        >>> check_int("seed", 1.7)
        Traceback (most recent call last):
        ...
        TypeError: seed must be an int, got 1.7
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def check_real(
    name: str, value: object, *, above: float | None = None, at_least: float | None = None, below: float | None = None
) -> float:
    """``value`` as a finite ``float`` with ``value > above``, ``value >= at_least`` and ``value < below``
    (each bound only when given). Python and numpy reals are accepted; bools and strings are not.

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: it is NaN, infinite or out of bounds (the message states the bounds).

    Example:
        >>> check_real("eps", 1e-8, above=0.0)
        1e-08
        >>> check_real("betas[0]", 2, at_least=0.0, below=1.0)
        Traceback (most recent call last):
        ...
        ValueError: betas[0] must be a finite number >= 0.0 and < 1.0, got 2
    """
    bounds = [f"{op} {bound}" for op, bound in ((">", above), (">=", at_least), ("<", below)) if bound is not None]
    expected = f"a finite number {' and '.join(bounds)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    number = float(value)
    ok = (
        math.isfinite(number)
        and (above is None or number > above)
        and (at_least is None or number >= at_least)
        and (below is None or number < below)
    )
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return number


def check_fraction(name: str, value: object) -> float:
    """``value`` as a ``float`` in (0, 1]: a share of a set, 1 being all of it.

    Raises:
        TypeError: ``value`` is not a real number (bools and strings are not).
        ValueError: it is NaN or outside (0, 1].

    Example:
        >>> check_fraction("top", 0.1)
        0.1
        >>> check_fraction("top", 1.5)
        Traceback (most recent call last):
        ...
        ValueError: top must be a fraction in (0, 1], got 1.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a fraction in (0, 1], got {value!r}")
    if not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} must be a fraction in (0, 1], got {value!r}")
    return float(value)


#: The largest seed Optuna's samplers and NumPy's generators take (their seeds are 0 .. 2**32 - 1).
MAX_SEED = 2**32 - 1


def check_seed(name: str, value: object) -> int:
    """``value`` as a seed for Optuna's and NumPy's generators: an int in ``0 .. MAX_SEED``.

    Raises:
        TypeError: ``value`` is not an integer.
        ValueError: it is outside ``0 .. MAX_SEED``.

    Example:
        >>> check_seed("seed", 7)
        7
        >>> check_seed("seed", -1)
        Traceback (most recent call last):
        ...
        ValueError: seed must be an int from 0 to 4294967295, got -1
    """
    number = check_int(name, value)
    if not 0 <= number <= MAX_SEED:
        raise ValueError(f"{name} must be an int from 0 to {MAX_SEED}, got {number}")
    return number


#: The most characters of one input an error message repeats (:func:`shown`).
SHOWN_LIMIT = 120


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """``repr(value)`` for an error message, cut in the middle to ``limit`` characters when longer
    (then the length of a string follows): a pasted 10,000-character string must not flood the terminal.

    Example:
        >>> shown("ab")
        "'ab'"
        >>> shown("x" * 1000, limit=40)
        "'xxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxx' (1000 characters)"
    """
    return clip(repr(value), limit, length=len(value) if isinstance(value, str) else None)


def clip(text: str, limit: int = SHOWN_LIMIT, *, length: int | None = None) -> str:
    """``text`` cut in the middle to ``limit`` characters when longer, followed by its length
    (``length`` if given, else ``len(text)``); as it is when short enough."""
    if len(text) <= limit:
        return text
    head = (limit - 3) * 2 // 3
    return f"{text[:head]}...{text[len(text) - (limit - 3 - head) :]} ({len(text) if length is None else length} characters)"
