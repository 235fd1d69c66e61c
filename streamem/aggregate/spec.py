"""What one bucket feature computes: :class:`FeatureSpec` (name, function, field, filter).

The functions (:data:`FUNCTIONS`) and the value of each over an empty bucket:

===============  ==========================================  ==============
``fn``           value over the bucket's matching events      empty bucket
===============  ==========================================  ==============
count            how many                                     0
sum              sum of ``field``                             0
mean             mean of ``field``                            NaN (missing)
min, max         least / greatest ``field``                   NaN
quantile         the ``q`` quantile of ``field`` (exact/KLL) NaN
distinct_count   distinct values of ``field`` (HyperLogLog)   0
count_by         a count per value of ``field``: ``top``      0 each
                 columns, then ``other``
===============  ==========================================  ==============

A numeric function skips events whose ``field`` is missing (None); ``where`` (parsed by
:mod:`streamem.parsing.expr`, never eval'd) keeps only the events it holds for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from streamem.errors import ConfigError
from streamem.parsing.expr import Expression, parse

__all__ = ["FUNCTIONS", "NUMERIC", "FeatureSpec"]

#: every ``fn``
FUNCTIONS = ("count", "sum", "mean", "min", "max", "quantile", "distinct_count", "count_by")
#: the functions that read ``field`` as a number
NUMERIC = ("sum", "mean", "min", "max", "quantile")
MAX_TOP = 1000


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of each bucket.

    Parameters
    ----------
    name
        The feature's name (``count_by`` makes the columns ``name[0]`` .. ``name[top-1]``
        and ``name[other]``).
    fn
        One of :data:`FUNCTIONS`.
    field
        The record field read (all but ``count``).
    where
        A filter such as ``status >= 500``; only matching events count.
    q
        The quantile, for ``quantile`` (0 <= q <= 1).
    top
        Values with a column of their own, for ``count_by``; the first ``top`` distinct
        values seen get them, in order, and later ones count as ``other``.
    path
        The YAML path, for error messages.

    Examples
    --------
    >>> FeatureSpec("errors", "count", where="status >= 500").columns
    ('errors',)
    >>> FeatureSpec("m", "count_by", field="method", top=2).columns
    ('m[0]', 'm[1]', 'm[other]')
    >>> FeatureSpec("p95", "quantile", field="t")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: p95.q: required for fn quantile; give e.g. q: 0.95
    """

    name: str
    fn: str
    field: str | None = None
    where: str | None = None
    q: float | None = None
    top: int | None = None
    path: str = ""
    expression: Expression | None = dataclasses.field(default=None, init=False, compare=False,
                                          repr=False)

    def __post_init__(self) -> None:
        at = self.path or self.name
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"{at}.name", "required; name the feature, e.g. name: requests")
        if self.fn not in FUNCTIONS:
            raise ConfigError(f"{at}.fn", f"{self.fn!r} is not a function; use one of "
                              f"{', '.join(FUNCTIONS)}")
        if self.fn == "count":
            if self.field is not None:
                raise ConfigError(f"{at}.field", "count reads no field; remove it (use "
                                  "where: to count only some events)")
        elif not isinstance(self.field, str) or not self.field:
            raise ConfigError(f"{at}.field", f"required for fn {self.fn}; name the record "
                              "field it reads")
        if self.fn == "quantile":
            if self.q is None:
                raise ConfigError(f"{at}.q", "required for fn quantile; give e.g. q: 0.95")
            if isinstance(self.q, bool) or not isinstance(self.q, (int, float)) \
                    or not 0.0 <= float(self.q) <= 1.0:
                raise ConfigError(f"{at}.q", f"{self.q!r} is not a quantile; give a number "
                                  "from 0 to 1, e.g. 0.95")
        elif self.q is not None:
            raise ConfigError(f"{at}.q", f"only read by fn quantile, not {self.fn}; remove it")
        if self.fn == "count_by":
            top = 10 if self.top is None else self.top
            if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
                raise ConfigError(f"{at}.top", f"{self.top!r} must be a whole number from 1 "
                                  f"to {MAX_TOP}, e.g. top: 20")
            object.__setattr__(self, "top", top)
        elif self.top is not None:
            raise ConfigError(f"{at}.top", f"only read by fn count_by, not {self.fn}; "
                              "remove it")
        if self.where is not None:
            object.__setattr__(self, "expression", parse(self.where, f"{at}.where"))

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the columns this feature adds to a bucket's vector."""
        if self.fn == "count_by":
            assert self.top is not None
            return (*(f"{self.name}[{i}]" for i in range(self.top)), f"{self.name}[other]")
        return (self.name,)
