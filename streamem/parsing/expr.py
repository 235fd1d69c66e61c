"""A small, safe filter language for config: ``status >= 500 and method in [POST, PUT]``.

Used by log aggregation (``aggregate.features[].where``) and by suppression rules
(``rules[].when``). It is parsed by a hand-written recursive-descent parser and evaluated by
closures over plain comparisons; nothing is ever passed to ``eval``.

Grammar::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := FIELD OP VALUE | FIELD ("in" | "not in") "[" VALUE ("," VALUE)* "]"
    FIELD      := a name or dotted path: [A-Za-z_][A-Za-z0-9_.-]*
    OP         := == | != | < | <= | > | >=
    VALUE      := a number, a quoted string ('..' or ".."), true, false, or a bare word

:meth:`Expression.mask` evaluates a filter over columns (one numpy array per field) at once,
with the same results as calling it on each row.

A number compares numerically with a field whose value is a number or a numeric string
(``status >= 500`` holds for ``"503"``); every other pair compares as text with ``==``,
``!=`` and ``in`` only (an ordering against a non-number is false). A missing field makes its
comparison false (and ``!=`` / ``not in`` true). Errors are :class:`~streamem.errors.ConfigError`
naming the config path, the character position and what was expected.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.errors import ConfigError

__all__ = ["Expression", "parse"]

Record = Mapping[str, Any]
_MAX_TEXT = 4096
_MAX_DEPTH = 32
_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_]))
     |(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
     |(?P<op><=|>=|==|!=|<|>)
     |(?P<punct>[()\[\],])
     |(?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
     |(?P<bad>\S)
    )""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "in"}
_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        f = float(v)
        return f if not math.isnan(f) else None
    if isinstance(v, str) and len(v) < 64:
        try:
            f = float(v)
        except ValueError:
            return None
        return f if not math.isnan(f) else None
    return None


def _lookup(record: Record, field: str) -> Any:
    if field in record:
        return record[field]
    cur: Any = record
    for part in field.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _equal(v: Any, want: Any) -> bool:
    if v is None:
        return False
    wn = _number(want) if not isinstance(want, str) else None
    if wn is not None:
        vn = _number(v)
        return vn is not None and vn == wn
    if isinstance(want, bool):
        return v is want or (isinstance(v, str) and v.lower() == str(want).lower())
    return str(v) == str(want)


Node = tuple[Any, ...]
"""A parsed node: ``("or"|"and", [nodes])``, ``("not", node)``, ``("cmp", field, op, value)``
or ``("in", field, values, negate)``."""


def _row(node: Node, r: Record) -> bool:
    kind = node[0]
    if kind == "or":
        return any(_row(n, r) for n in node[1])
    if kind == "and":
        return all(_row(n, r) for n in node[1])
    if kind == "not":
        return not _row(node[1], r)
    if kind == "in":
        v = _lookup(r, node[1])
        hit = any(_equal(v, w) for w in node[2])
        return hit != bool(node[3])
    _, field, op, want = node
    v = _lookup(r, field)
    if op == "==":
        return _equal(v, want)
    if op == "!=":
        return not _equal(v, want)
    x = _number(v)
    return x is not None and bool(_ORDER[op](x, want))


def _numeric(col: NDArray[Any]) -> NDArray[np.float64]:
    if col.dtype.kind in "fiu":
        return col.astype(np.float64, copy=False)
    if col.dtype.kind == "b":
        return np.full(col.shape, np.nan)
    out = [_number(v) for v in col.tolist()]
    return np.array([np.nan if v is None else v for v in out], dtype=np.float64)


def _equal_mask(col: NDArray[Any], want: Any) -> NDArray[np.bool_]:
    wn = _number(want) if not isinstance(want, str) else None
    if wn is not None:
        eq: NDArray[np.bool_] = np.equal(_numeric(col), wn)
        return eq
    if col.dtype.kind in "fiub":
        return np.array([_equal(v, want) for v in col.tolist()], dtype=bool) \
            if isinstance(want, bool) else np.zeros(col.shape, dtype=bool)
    return np.array([_equal(v, want) for v in col.tolist()], dtype=bool)


def _mask(node: Node, cols: Mapping[str, NDArray[Any]], n: int) -> NDArray[np.bool_]:
    kind = node[0]
    if kind in ("or", "and"):
        parts = [_mask(c, cols, n) for c in node[1]]
        ufunc = np.logical_or if kind == "or" else np.logical_and
        joined: NDArray[np.bool_] = ufunc.reduce(parts)
        return joined
    if kind == "not":
        return ~_mask(node[1], cols, n)
    col = cols.get(node[1])
    if kind == "in":
        hit = np.zeros(n, dtype=bool) if col is None else \
            np.logical_or.reduce([_equal_mask(col, w) for w in node[2]])
        return ~hit if node[3] else hit
    _, _, op, want = node
    if col is None:
        return np.full(n, op == "!=")
    if op == "==":
        return _equal_mask(col, want)
    if op == "!=":
        return ~_equal_mask(col, want)
    with np.errstate(invalid="ignore"):
        out: NDArray[np.bool_] = _ORDER[op](_numeric(col), want)
        return out


class Expression:
    """A parsed filter: call it on one record, or :meth:`mask` it over columns.

    Examples
    --------
    >>> e = parse("status >= 500 and method in [POST, PUT]")
    >>> e({"status": "503", "method": "POST"}), e({"status": 200, "method": "POST"})
    (True, False)
    >>> e.mask({"status": np.array([503, 200]), "method": np.array(["PUT", "PUT"])}).tolist()
    [True, False]
    >>> e.fields
    ('method', 'status')
    """

    def __init__(self, text: str, tree: Node, fields: set[str]) -> None:
        self.text = text
        self._tree = tree
        self.fields = tuple(sorted(fields))

    def __call__(self, record: Record) -> bool:
        return _row(self._tree, record)

    def mask(self, columns: Mapping[str, NDArray[Any]]) -> NDArray[np.bool_]:
        """Evaluate on every row of ``columns`` at once (each an array of length n; a missing
        field counts as missing in every row, NaN as a missing number).

        Parameters
        ----------
        columns
            Field name -> array of shape (n_rows,).

        Returns
        -------
        ndarray of bool, shape (n_rows,)
        """
        lengths = {len(c) for c in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        return np.asarray(_mask(self._tree, columns, n), dtype=bool).reshape(n)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.text, self.path = text, path
        self.toks = self._lex(text)
        self.i = 0
        self.fields: set[str] = set()
        self.depth = 0

    def fail(self, tok: _Tok | None, expected: str) -> ConfigError:
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        if tok is None:
            where, got = "at the end", "nothing"
        else:
            where, got = f"at character {tok.pos + 1}", repr(tok.text)
        return ConfigError(self.path, f"{where} of {shown!r}: expected {expected}, got {got}")

    def _lex(self, text: str) -> list[_Tok]:
        out: list[_Tok] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:  # only trailing white space left
                break
            kind = m.lastgroup or "bad"
            start = m.start(kind)
            tok = _Tok(kind, m.group(kind), start)
            if kind == "bad":
                raise self.fail(tok, "a field, an operator (== != < <= > >= in) or a value")
            if kind == "word" and tok.text.lower() in _KEYWORDS:
                tok = _Tok("kw", tok.text.lower(), start)
            out.append(tok)
            pos = m.end()
        return out

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, text: str | None = None, expected: str = "") -> _Tok:
        tok = self.peek()
        if tok is None or tok.kind != kind or (text is not None and tok.text != text):
            raise self.fail(tok, expected or repr(text or kind))
        self.i += 1
        return tok

    def at(self, kind: str, text: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == kind and tok.text == text

    def parse(self) -> Node:
        test = self.expr()
        if self.peek() is not None:
            raise self.fail(self.peek(), "'and', 'or' or the end")
        return test

    def expr(self) -> Node:
        parts = [self.and_expr()]
        while self.at("kw", "or"):
            self.i += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def and_expr(self) -> Node:
        parts = [self.not_expr()]
        while self.at("kw", "and"):
            self.i += 1
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def not_expr(self) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail(self.peek(), f"at most {_MAX_DEPTH} nested 'not' or parentheses")
        try:
            if self.at("kw", "not"):
                self.i += 1
                return ("not", self.not_expr())
            if self.at("punct", "("):
                self.i += 1
                inner = self.expr()
                self.take("punct", ")", "')'")
                return inner
            return self.comparison()
        finally:
            self.depth -= 1

    def value(self) -> Any:
        tok = self.peek()
        if tok is None or tok.kind not in ("num", "str", "word"):
            raise self.fail(tok, "a value (a number, a quoted string or a word)")
        self.i += 1
        if tok.kind == "num":
            return float(tok.text)
        if tok.kind == "str":
            body = tok.text[1:-1]
            return re.sub(r"\\(.)", r"\1", body)
        low = tok.text.lower()
        return {"true": True, "false": False}.get(low, tok.text)

    def comparison(self) -> Node:
        field = self.take("word", expected="a field name").text
        self.fields.add(field)
        negate = False
        if self.at("kw", "not"):
            self.i += 1
            negate = True
            if not self.at("kw", "in"):
                raise self.fail(self.peek(), "'in' after 'not'")
        if self.at("kw", "in"):
            self.i += 1
            self.take("punct", "[", "'[' to start a list such as [GET, POST]")
            values = [self.value()]
            while self.at("punct", ","):
                self.i += 1
                values.append(self.value())
            self.take("punct", "]", "',' or ']'")
            return ("in", field, tuple(values), negate)
        op_tok = self.peek()
        if op_tok is None or op_tok.kind != "op":
            raise self.fail(op_tok, "an operator (== != < <= > >= in)")
        self.i += 1
        op, want = op_tok.text, self.value()
        if op in ("==", "!="):
            return ("cmp", field, op, want)
        num = _number(want) if not isinstance(want, str) else None
        if num is None:
            raise self.fail(op_tok, f"a number after {op} (orderings compare numbers)")
        return ("cmp", field, op, num)


def parse(text: str, path: str = "expression") -> Expression:
    """Parse ``text`` into an :class:`Expression`.

    Parameters
    ----------
    text
        The filter, e.g. ``status >= 500 and method != GET``.
    path
        The YAML path it came from, for error messages.

    Raises
    ------
    ConfigError
        The text is empty, too long, too deeply nested or not of the grammar; the message
        gives the position and what was expected.

    Examples
    --------
    >>> parse("value < 90")({"value": 85.5})
    True
    >>> parse("status >= ", "aggregate.features[1].where")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: aggregate.features[1].where: at the end of 'status >= ': ...
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(path, "an empty filter; write e.g. status >= 500")
    if len(text) > _MAX_TEXT:
        raise ConfigError(path, f"a filter of {len(text)} characters; keep it under {_MAX_TEXT}")
    p = _Parser(text, path)
    tree = p.parse()
    return Expression(text, tree, p.fields)
