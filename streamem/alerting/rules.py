"""Operator rules from the ``rules`` config section: suppress known alerts, or keep known
patterns out of the model.

Each rule has an ``action`` and up to three conditions, all of which must hold:

- ``key``: the event's key equals it, or matches it as a glob (``pump-*``);
- ``feature``: the rule looks at this feature; ``when`` may call its value ``value``;
- ``when``: a :mod:`streamem.parsing.expr` filter over the event's features (by name), ``value``,
  ``key`` and, for ``suppress``, ``severity``.

``suppress``: a matching anomaly is not sent to the sinks and opens no incident (the page
still lists it, marked with the rule). ``skip_learning``: a matching event is scored as usual
but never learned. Rules are evaluated over whole batches with numpy masks; per-key globs are
matched once per distinct key of the batch.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.parsing.expr import Expression, parse

__all__ = ["ACTIONS", "Rule", "Rules"]

ACTIONS = ("suppress", "skip_learning")


@dataclass(frozen=True)
class Rule:
    """One compiled rule (see the module docstring)."""

    action: str
    name: str
    key: str | None = None
    feature: int | None = None
    when: Expression | None = None

    def _key_hits(self, get_keys: Callable[[], Sequence[str | None]]) -> NDArray[np.bool_]:
        assert self.key is not None
        keys = get_keys()
        glob = any(c in self.key for c in "*?[")
        verdict: dict[str | None, bool] = {}
        for k in set(keys):
            verdict[k] = k is not None and (fnmatch.fnmatchcase(k, self.key) if glob
                                             else k == self.key)
        return np.fromiter((verdict[k] for k in keys), dtype=bool, count=len(keys))


class Rules:
    """The ``rules`` section, compiled.

    Parameters
    ----------
    rules
        The compiled rules, in config order.
    feature_names
        Names of the feature columns (``fields.features``).

    Examples
    --------
    >>> import numpy as np
    >>> r = Rules.from_config([{"key": "pump-*", "feature": "temp", "when": "value < 90",
    ...                         "action": "suppress"}], ["temp", "flow"])
    >>> X = np.array([[85.0, 1.0], [95.0, 1.0], [85.0, 1.0]])
    >>> r.matching("suppress", X, ["pump-3", "pump-3", "fan-1"]).tolist()
    [0, -1, -1]
    """

    def __init__(self, rules: Sequence[Rule], feature_names: Sequence[str]) -> None:
        self.rules = list(rules)
        self.feature_names = list(feature_names)

    @classmethod
    def from_config(cls, rules: Sequence[Any], feature_names: Sequence[str],
                    path: str = "rules") -> Rules:
        """Compile config entries (mappings or ``RuleConfig``); filter errors name their path.

        Raises
        ------
        ConfigError
            A ``when`` that does not parse, or a ``feature`` not in ``feature_names``.
        """
        from streamem.errors import ConfigError

        out = []
        names = list(feature_names)
        for i, r in enumerate(rules):
            get = r.get if isinstance(r, dict) else (lambda k, r=r: getattr(r, k, None))
            action = get("action")
            if action not in ACTIONS:
                raise ConfigError(f"{path}[{i}].action",
                                  f"{action!r} is not one of {', '.join(ACTIONS)}")
            feature, key, when = get("feature"), get("key"), get("when")
            if feature is not None and feature not in names:
                raise ConfigError(f"{path}[{i}].feature", f"{feature!r} is not one of "
                                  "fields.features; name a feature the model reads")
            if feature is None and key is None and when is None:
                raise ConfigError(f"{path}[{i}]", "a rule needs key, feature or when; without "
                                  "them it would match every event")
            expr = None if when is None else parse(when, f"{path}[{i}].when")
            if expr is not None and "value" in expr.fields and feature is None:
                raise ConfigError(f"{path}[{i}].when", "uses 'value' but the rule names no "
                                  "feature; add feature: <name>")
            if expr is not None and action == "skip_learning" and "severity" in expr.fields:
                raise ConfigError(f"{path}[{i}].when", "skip_learning is decided before "
                                  "scoring, so it cannot use severity; use a feature value")
            out.append(Rule(action, get("name") or f"rule-{i}", key,
                            None if feature is None else names.index(feature), expr))
        return cls(out, names)

    def has(self, action: str) -> bool:
        """Whether any rule has this action."""
        return any(r.action == action for r in self.rules)

    def matching(self, action: str, X: NDArray[np.float64],
                 keys: Sequence[str | None] | Callable[[], Sequence[str | None]],
                 severity: NDArray[np.float64] | None = None) -> NDArray[np.intp]:
        """Per row, the index of the first rule with ``action`` that matches it, else -1.

        Parameters
        ----------
        action
            ``suppress`` or ``skip_learning``.
        X
            Shape (n_rows, n_features), NaN where missing.
        keys
            The rows' keys (None where an event has none), or a callable that returns them
            (called only if a rule tests the key).
        severity
            Shape (n_rows,), for ``suppress`` rules that test it.
        """
        n = len(X)
        out = np.full(n, -1, dtype=np.intp)
        cache: list[Sequence[str | None]] = []

        def get_keys() -> Sequence[str | None]:
            if not cache:
                cache.append(keys() if callable(keys) else keys)
            return cache[0]

        for j, rule in enumerate(self.rules):
            if rule.action != action:
                continue
            hit = rule._key_hits(get_keys) if rule.key is not None else np.ones(n, dtype=bool)
            if rule.feature is not None:
                hit &= ~np.isnan(X[:, rule.feature])
            if rule.when is not None and hit.any():
                hit &= rule.when.mask(self._columns(rule, X, get_keys, severity))
            out[(out < 0) & hit] = j
        return out

    def _columns(self, rule: Rule, X: NDArray[np.float64],
                 get_keys: Callable[[], Sequence[str | None]],
                 severity: NDArray[np.float64] | None) -> dict[str, NDArray[Any]]:
        assert rule.when is not None
        cols: dict[str, NDArray[Any]] = {}
        for f in rule.when.fields:
            if f == "value" and rule.feature is not None:
                cols[f] = X[:, rule.feature]
            elif f == "key":
                keys = get_keys()
                arr = np.empty(len(keys), dtype=object)
                arr[:] = list(keys)
                cols[f] = arr
            elif f == "severity" and severity is not None:
                cols[f] = severity
            elif f in self.feature_names:
                cols[f] = X[:, self.feature_names.index(f)]
        return cols
