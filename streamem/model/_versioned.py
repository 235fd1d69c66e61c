"""Reading a versioned state snapshot: one place that checks its version and kind, upgrades
older layouts, converts fields, and turns every defect into one :class:`~streamem.StateError`
that names the owner, the field (as a dotted path) and the fix.

Every ``from_state`` in streamem reads through a :class:`StateReader` (numpy only, pure).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

from streamem.errors import StateError

__all__ = ["StateReader"]

T = TypeVar("T")
#: The fix named by default: a snapshot is only ever written by streamem itself.
FIX = "the snapshot is corrupt or was written by another streamem version"
_MISSING: Any = object()
#: What a malformed value raises while it is converted (a ``StateError`` passes through):
#: any failure, numpy's and LAPACK's included, since a snapshot holds no code.
_MALFORMED = (Exception,)


class StateReader(Mapping[str, Any]):
    """A read-only view of one state mapping whose every failure is a ``StateError``.

    Parameters
    ----------
    state
        The snapshot (``to_state()`` output, possibly decoded from JSON), or a reader (then
        it is used as it is, keeping its owner and path).
    owner
        Name used in messages (``"Detector"``, ``"template miner"``).
    version
        Required value of ``state["version"]`` (None: not versioned on its own).
    kind
        Required value of ``state["kind"]`` when the key is present.
    upgrade
        Applied to a shallow copy of an accepted state: fills in what older layouts of the
        same version lack.
    fix
        What the operator should do; ends every message.

    Examples
    --------
    >>> r = StateReader({"version": 1, "n": "3", "x": [1, 2]}, "Thing", version=1)
    >>> r.integer("n"), r.array("x").tolist(), r.number("lr", 0.5)
    (3, [1.0, 2.0], 0.5)
    >>> r.integer("m")
    Traceback (most recent call last):
    ...
    streamem.errors.StateError: malformed Thing state: 'm' is missing (the snapshot ...
    >>> StateReader({"version": 2}, "Thing", version=1)
    Traceback (most recent call last):
    ...
    streamem.errors.StateError: Thing state version 2 is not 1; it was written by another ...
    """

    def __init__(
        self,
        state: object,
        owner: str,
        *,
        version: int | None = None,
        kind: str | None = None,
        upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        fix: str = FIX,
        path: str = "",
    ) -> None:
        self.owner, self.fix, self.path = owner, fix, path
        if not isinstance(state, Mapping):
            raise StateError(f"{owner} state{self._at()} is not a mapping but "
                             f"{type(state).__name__}; {fix}")
        if version is not None and state.get("version") != version:
            raise StateError(f"{owner} state{self._at()} version {state.get('version')!r} is "
                             f"not {version}; "
                             "it was written by another streamem version"
                             + ("" if fix == FIX else f"; {fix}"))
        if kind is not None and state.get("kind", kind) != kind:
            raise StateError(f"{owner} state{self._at()} has kind {state.get('kind')!r}, "
                             f"expected {kind!r}; {fix}")
        self._state: Mapping[str, Any] = state
        if upgrade is not None:
            with self.guard():
                self._state = upgrade(dict(state))

    @classmethod
    def of(cls, state: Mapping[str, Any], owner: str, **checks: Any) -> StateReader:
        """``state`` itself when it is a reader (it keeps the outer owner and path), else a
        new reader; the ``checks`` (``version``, ``kind``, ``upgrade``, ``fix``) apply both ways.

        Examples
        --------
        >>> outer = StateReader({"inner": {"a": 1}}, "Outer")
        >>> StateReader.of(outer.sub("inner"), "Inner").integer("b")
        Traceback (most recent call last):
        ...
        streamem.errors.StateError: malformed Outer state: 'inner.b' is missing (...); ...
        """
        if isinstance(state, StateReader):
            if checks:
                return cls(state._state, state.owner, path=state.path,
                           **{"fix": state.fix, **checks})
            return state
        return cls(state, owner, **checks)

    # ------------------------------------------------------------------ mapping
    def __getitem__(self, field: str) -> Any:
        try:
            return self._state[field]
        except KeyError:
            raise self.error(f"{self.path + field!r} is missing (the snapshot is incomplete)"
                             ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)

    def __contains__(self, field: object) -> bool:
        return field in self._state

    def get(self, field: str, default: Any = None) -> Any:
        """The raw value, or ``default`` when absent (an older layout).

        Examples
        --------
        >>> StateReader({}, "Thing").get("a", 2)
        2
        """
        return self._state.get(field, default)

    # ------------------------------------------------------------------ conversion
    def value(self, field: str, convert: Callable[[Any], T], what: str,
              default: Any = _MISSING) -> T:
        """``convert(state[field])``; a missing field gives ``default`` (when given).

        Parameters
        ----------
        field
            Key in this state.
        convert
            Conversion to apply.
        what
            What the value should be (for the message).
        default
            Value for an absent field (converted too); absent and no default: an error.

        Examples
        --------
        >>> StateReader({"n": "x"}, "Thing").value("n", int, "an integer")
        Traceback (most recent call last):
        ...
        streamem.errors.StateError: malformed Thing state: 'n' is 'x', not an integer; ...
        """
        raw = self.get(field, default) if default is not _MISSING else self[field]
        try:
            return convert(raw)
        except _MALFORMED:
            shown = repr(raw)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise self.error(f"{self.path + field!r} is {shown}, not {what}") from None

    def integer(self, field: str, default: Any = _MISSING) -> int:
        """``int(state[field])``."""
        return self.value(field, int, "an integer", default)

    def number(self, field: str, default: Any = _MISSING) -> float:
        """``float(state[field])``."""
        return self.value(field, float, "a number", default)

    def flag(self, field: str, default: Any = _MISSING) -> bool:
        """``bool(state[field])``."""
        return self.value(field, bool, "a boolean", default)

    def text(self, field: str, default: Any = _MISSING) -> str:
        """``str(state[field])``."""
        return self.value(field, str, "a string", default)

    def array(self, field: str, dtype: DTypeLike = float, default: Any = _MISSING
              ) -> NDArray[Any]:
        """``np.asarray(state[field], dtype=dtype)`` (no copy when it already is one).

        Examples
        --------
        >>> StateReader({"a": [[1, 2]]}, "Thing").array("a").shape
        (1, 2)
        """
        return self.value(field, lambda v: np.asarray(v, dtype=dtype), "an array", default)

    def shaped(self, field: str, shape: tuple[int, ...], dtype: DTypeLike = float
               ) -> NDArray[Any]:
        """:meth:`array`, which must have exactly ``shape``.

        Examples
        --------
        >>> StateReader({"a": [1.0, 2.0]}, "Thing").shaped("a", (3,))
        Traceback (most recent call last):
        ...
        streamem.errors.StateError: malformed Thing state: 'a' has shape (2,), expected (3,); ...
        """
        out = self.array(field, dtype)
        if out.shape != shape:
            raise self.error(f"{self.path + field!r} has shape {out.shape}, expected {shape}")
        return out

    def sub(self, field: str) -> StateReader:
        """The nested state ``state[field]``, read with this owner and a longer path.

        Examples
        --------
        >>> StateReader({"a": {"b": 1}}, "Thing").sub("a").path
        'a.'
        """
        return StateReader(self[field], self.owner, fix=self.fix, path=f"{self.path}{field}.")

    # ------------------------------------------------------------------ errors
    def error(self, detail: str) -> StateError:
        """The ``StateError`` for ``detail`` (owner first, the fix last).

        Examples
        --------
        >>> str(StateReader({}, "Thing", fix="delete it").error("'a' is odd"))
        "malformed Thing state: 'a' is odd; delete it"
        """
        return StateError(f"malformed {self.owner} state: {detail}; {self.fix}")

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn what rebuilding from the fields raises (a bad constructor argument, a
        malformed nested value) into a ``StateError``; a ``StateError`` passes unchanged.

        Examples
        --------
        >>> r = StateReader({"params": {"q": 2}}, "Thing")
        >>> with r.guard():
        ...     dict(**r["params"], q=1)
        Traceback (most recent call last):
        ...
        streamem.errors.StateError: malformed Thing state: TypeError(...); ...
        """
        try:
            yield
        except StateError:
            raise
        except _MALFORMED as exc:
            where = f"in {self.path[:-1]!r}: " if self.path else ""
            raise self.error(f"{where}{exc!r}") from exc

    def _at(self) -> str:
        return f" at {self.path[:-1]!r}" if self.path else ""
