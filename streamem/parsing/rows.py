"""Records of one regex's matches, built column-wise: the fast path of text formats.

:func:`records` turns the matches of a batch into records (``{group name: value}``) equal
to ``match.groupdict()`` with the declared conversions applied, but without a dict per
record until the end: ``match.groups()`` gives one tuple per line, each typed field is read
from the tuples as a column and converted for the whole batch (``map`` at C speed, a time
field through a table of its distinct values), and one list comprehension then builds every
record at once. That comprehension is generated per (pattern, typed fields) and cached; its
text is made only of group indices and of the group names as string constants (``repr``),
never of the log's content.

A column that the fast conversion rejects (``-``, nginx's upstream lists, a bad value) is
converted value by value with the lenient converter; the lines whose value is still not of
the type are returned as ``wrong_type`` rejections.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from itertools import compress, repeat
from operator import attrgetter, is_not, itemgetter, setitem
from typing import Any

import numpy as np

__all__ = ["line_columns", "line_records", "pattern_records", "records"]

_CONVERSION_ERRORS = (ValueError, KeyError, IndexError, TypeError)
Builder = Callable[..., list[dict[str, Any]]]


@lru_cache(maxsize=64)
def _builder(names: tuple[str, ...], slots: tuple[int, ...], n_groups: int,
             typed: tuple[int, ...]) -> Builder:
    """``build(rows, *typed_columns)``: one dict per row of groups, keys ``names`` (group
    ``slots``), the groups in ``typed`` taken from the columns instead of the rows."""
    target = "(" + "".join(f"v{j}, " for j in range(n_groups)) + "),"
    target += "".join(f" t{k}," for k in range(len(typed)))
    col = {j: f"t{k}" for k, j in enumerate(typed)}
    items = ", ".join(f"{n!r}: {col.get(j, f'v{j}')}" for n, j in zip(names, slots,
                                                                        strict=True))
    src = (f"def build(rows, *cols):\n"
           f"    return [{{{items}}} for {target} in zip(rows, *cols)]\n")
    space: dict[str, Any] = {}
    exec(compile(src, "<streamem.parsing.rows>", "exec"), space)
    build: Builder = space["build"]
    return build


def _convert(vals: list[Any], fast: Callable[[str], Any], is_time: bool) -> list[Any]:
    """``vals`` converted by ``fast`` (None stays None); raises what ``fast`` raises."""
    if is_time:  # few distinct times per batch: convert each once
        table = {v: None if v is None else fast(v) for v in set(vals)}
        return list(map(table.__getitem__, vals))
    n_none = vals.count(None)
    if n_none == len(vals):
        return vals
    if n_none:
        out = vals.copy()
        idx = list(compress(range(len(vals)), map(is_not, vals, repeat(None))))
        list(map(out.__setitem__, idx, list(map(fast, map(vals.__getitem__, idx)))))
        return out
    return list(map(fast, vals))


def records(patterns: Sequence[re.Pattern[str]], hits: Sequence[re.Match[str]],
            types: Mapping[str, str], fast: Mapping[str, Callable[[str], Any]],
            lenient: Mapping[str, Callable[[str], Any]], time_types: frozenset[str],
            name: str) -> tuple[list[dict[str, Any]], dict[int, tuple[str, str]]]:
    """The records of ``hits`` (matches of ``patterns``) and the rejections by position.

    The hits of each pattern are built together (:func:`pattern_records`). A time-typed
    field that a pattern lacks is None in its records (as in every other record).

    Parameters
    ----------
    patterns
        The patterns the hits are matches of.
    hits
        The matches, shape (n,).
    types
        ``{field: type name}``; ``"str"`` and fields that are not groups of ``rx`` are
        left as text.
    fast, lenient
        Converters by type name: ``fast`` is tried on a whole column, ``lenient`` decides
        value by value when ``fast`` fails.
    time_types
        Type names whose converters are cached per distinct value.
    name
        The format's name (in the rejection detail).

    Returns
    -------
    recs : list of dict
        One per hit, equal to ``groupdict()`` with the conversions applied.
    bad : dict
        ``{position: ("wrong_type", detail)}`` of the hits whose value is not of its type.

    Examples
    --------
    >>> rx = re.compile(r"(?P<level>\\w+) (?P<ms>\\S+)")
    >>> hits = [rx.match(s) for s in ("INFO 12", "WARN x")]
    >>> records([rx], hits, {"ms": "int"}, {"int": int}, {"int": int}, frozenset(), "regex")
    ([{'level': 'INFO', 'ms': 12}, {'level': 'WARN', 'ms': 'x'}], {1: ('wrong_type', \
"ms='x' is not a int (the regex format's type for ms)")})
    """
    if len(patterns) == 1:
        return pattern_records(patterns[0], list(map(re.Match.groups, hits)), types, fast,
                               lenient, time_types, name)
    which = {id(rx): k for k, rx in enumerate(patterns)}
    codes = np.fromiter(map(which.__getitem__, map(id, map(attrgetter("re"), hits))),
                        dtype=np.intp, count=len(hits))
    out: list[dict[str, Any]] = [{}] * len(hits)
    bad: dict[int, tuple[str, str]] = {}
    for k, rx in enumerate(patterns):
        idx = np.flatnonzero(codes == k).tolist()
        if not idx:
            continue
        rows = list(map(re.Match.groups, map(hits.__getitem__, idx)))
        recs, why = pattern_records(rx, rows, types, fast, lenient, time_types, name)
        for f in [f for f, t in types.items() if t in time_types and f not in rx.groupindex]:
            list(map(setitem, recs, repeat(f), repeat(None, len(recs))))
        list(map(out.__setitem__, idx, recs))
        bad.update({idx[i]: w for i, w in why.items()})
    return out, dict(sorted(bad.items()))


def pattern_records(rx: re.Pattern[str], rows: Sequence[tuple[str | None, ...]],
                    types: Mapping[str, str], fast: Mapping[str, Callable[[str], Any]],
                    lenient: Mapping[str, Callable[[str], Any]], time_types: frozenset[str],
                    name: str) -> tuple[list[dict[str, Any]], dict[int, tuple[str, str]]]:
    """:func:`records` of one pattern ``rx``, from the ``groups()`` of its matches."""
    gi = rx.groupindex
    typed = [(f, t, gi[f] - 1) for f, t in types.items() if t != "str" and f in gi]
    bad: dict[int, tuple[str, str]] = {}
    cols = []
    for f, t, j in typed:
        vals = list(map(itemgetter(j), rows))
        try:
            cols.append(_convert(vals, fast[t], t in time_types))
        except _CONVERSION_ERRORS:
            conv, out = lenient[t], vals.copy()
            for i, v in enumerate(vals):
                if v is not None and i not in bad:
                    try:
                        out[i] = conv(v)
                    except _CONVERSION_ERRORS:
                        bad[i] = ("wrong_type", f"{f}={str(v)[:40]!r} is not a {t} "
                                  f"(the {name} format's type for {f})")
            cols.append(out)
    names = tuple(gi)
    build = _builder(names, tuple(gi[n] - 1 for n in names), rx.groups,
                     tuple(j for _, _, j in typed))
    return build(rows, *cols), bad


def line_records(rx: re.Pattern[str], texts: Sequence[str], types: Mapping[str, str],
                 fast: Mapping[str, Callable[[str], Any]],
                 lenient: Mapping[str, Callable[[str], Any]], time_types: frozenset[str],
                 name: str) -> tuple[list[dict[str, Any]], dict[int, tuple[str, str]]] | None:
    """:func:`records` of lines that all match ``rx`` (None when one does not).

    Each match lives only until its groups are taken: a batch of match objects held to
    the end would be promoted through the garbage collector's generations and make its
    full collections (of the whole heap) frequent; tuples of text leave its lists at once.
    """
    rows = list(map(re.Match.groups, filter(None, map(rx.match, texts))))
    if len(rows) != len(texts):
        return None
    return pattern_records(rx, rows, types, fast, lenient, time_types, name)


def line_columns(rx: re.Pattern[str], texts: Sequence[str], fields: Sequence[str],
                 types: Mapping[str, str], fast: Mapping[str, Callable[[str], Any]],
                 time_types: frozenset[str]) -> dict[str, list[Any]] | None:
    """The ``fields`` of lines that all match ``rx`` as columns (``{field: values}``, each
    of shape (n,); no record per line), typed by ``fast``; None when a line does not
    match or a value does not convert (:func:`line_records` then says which).

    Examples
    --------
    >>> rx = re.compile(r"(?P<level>\\w+) (?P<ms>\\S+)")
    >>> line_columns(rx, ["INFO 12", "WARN 7"], ["ms", "x"], {"ms": "int"}, {"int": int},
    ...              frozenset())
    {'ms': [12, 7]}
    """
    rows = list(map(re.Match.groups, filter(None, map(rx.match, texts))))
    if len(rows) != len(texts):
        return None
    gi, out = rx.groupindex, {}
    for f in fields:
        if f not in gi:
            continue
        vals = list(map(itemgetter(gi[f] - 1), rows))
        t = types.get(f, "str")
        if t != "str":
            try:
                vals = _convert(vals, fast[t], t in time_types)
            except _CONVERSION_ERRORS:
                return None
        out[f] = vals
    return out
