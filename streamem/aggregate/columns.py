"""Record fields to numpy columns for bucket features: values, numbers, filters, codes.

Each function walks a batch's records once per field (a list comprehension) and does the
rest with numpy, so the per-event cost is one ``dict.get`` per field used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_ABS", "factorize", "field_values", "numbers", "text", "texts",
           "where_column"]

#: larger magnitudes are not numbers here (their sums and squares overflow)
MAX_ABS = 1e100
_NUMBER_TYPES = frozenset({int, float})


def field_values(records: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    """``record.get(name)`` for each record; a dotted name also looks into nested objects."""
    try:
        vals = list(map(dict.get, records, repeat(name)))  # type: ignore[arg-type]
    except TypeError:  # a Mapping that is not a dict
        vals = [r.get(name) for r in records]
    if "." in name:
        parts = name.split(".")
        for i, v in enumerate(vals):
            if v is None:
                node: Any = records[i]
                for p in parts:
                    node = node.get(p) if isinstance(node, Mapping) else None
                vals[i] = node
    return vals


def _number(v: Any) -> float | None:
    """The number in ``v`` (a finite int/float or numeric text), or None."""
    if type(v) is bool:
        return None
    if type(v) in _NUMBER_TYPES:
        f = float(v)
    elif isinstance(v, str) and len(v) < 64:
        try:
            f = float(v)
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) and abs(f) <= MAX_ABS else None


def numbers(vals: list[Any]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """``(x, bad)``: the values as float64 (NaN where missing) and where a present value is
    not a finite number of magnitude at most :data:`MAX_ABS` (hostile input).

    Examples
    --------
    >>> x, bad = numbers([1, None, "2.5", "abc", True, float("inf")])
    >>> x.tolist()[:3], bad.tolist()
    ([1.0, nan, 2.5], [False, False, False, True, True, True])
    """
    kinds = set(map(type, vals))
    if kinds <= _NUMBER_TYPES:
        x = np.array(vals, dtype=np.float64)
        bad = ~np.isfinite(x)
        if len(x):
            bad |= np.abs(x) > MAX_ABS
        return np.where(bad, np.nan, x), bad
    conv = [_number(v) for v in vals]
    x = np.array([np.nan if c is None else c for c in conv], dtype=np.float64)
    bad = np.array([c is None and v is not None for c, v in zip(conv, vals, strict=True)],
                   dtype=bool)
    return x, bad


def where_column(vals: list[Any]) -> NDArray[Any]:
    """The column :meth:`streamem.parsing.expr.Expression.mask` reads: float64 when every value is a
    number, else an object array (missing values as None)."""
    if set(map(type, vals)) <= _NUMBER_TYPES:
        return np.array(vals, dtype=np.float64)
    out = np.empty(len(vals), dtype=object)
    out[:] = vals
    return out


def factorize(texts: list[str]) -> tuple[NDArray[np.int64], list[str]]:
    """``(codes, uniques)``: codes number the distinct texts in order of first appearance.

    Examples
    --------
    >>> codes, uniq = factorize(["b", "a", "b"])
    >>> codes.tolist(), uniq
    ([0, 1, 0], ['b', 'a'])
    """
    index = {k: i for i, k in enumerate(dict.fromkeys(texts))}
    codes = np.fromiter(map(index.__getitem__, texts), dtype=np.int64, count=len(texts))
    return codes, list(index)


def texts(vals: list[Any]) -> list[str]:
    """:func:`text` of each value (the list itself when every value is already text)."""
    return vals if set(map(type, vals)) <= {str} else [text(v) for v in vals]


def text(v: Any) -> str:
    """The text a categorical value counts as (None: ``""``; ``1`` and ``"1"`` alike)."""
    return v if type(v) is str else ("" if v is None else str(v))
