"""Entity keys for ``model.scope: key``: the key of each decoded row, and the rows without one.

``fields.key`` names one field or a list of fields. A composite key joins the text of its
parts with :data:`SEPARATOR` (``|``); a backslash or ``|`` inside a part is escaped with a
backslash, so ``["a|b", "c"]`` and ``["a", "b|c"]`` stay distinct keys (``a\\|b|c`` and
``a|b\\|c``). Each part is checked like a single key (:func:`streamem.parsing.eventmeta.
check_keys`: not empty, at most 1024 UTF-8 bytes, no control characters); under scope key a
row whose key is missing or bad is rejected with the reason ``invalid_key`` before the model
sees it, and the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streamem.config import Config
from streamem.config.durations import parse_duration
from streamem.events import DecodedBatch, Rejection
from streamem.parsing.eventmeta import check_keys, lookup

__all__ = ["SEPARATOR", "join_key", "key_idle_ttl", "key_parts", "screen_keys"]

SEPARATOR = "|"


def _escape(part: str) -> str:
    return part.replace("\\", "\\\\").replace(SEPARATOR, "\\" + SEPARATOR)


def join_key(parts: Sequence[Any]) -> str:
    """The composite key of ``parts`` (each as text, escaped, joined by ``|``).

    Examples
    --------
    >>> join_key(["a|b", "c"]), join_key(["a", "b|c"]), join_key(["plant", 7])
    ('a\\\\|b|c', 'a|b\\\\|c', 'plant|7')
    """
    return SEPARATOR.join(_escape(p if isinstance(p, str) else str(p)) for p in parts)


def key_parts(cfg: Config) -> tuple[str, ...]:
    """The fields of ``fields.key`` (empty without one).

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> key_parts(parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"],
    ...                         "key": ["site", "pump"]}}))
    ('site', 'pump')
    """
    key = cfg.fields.key
    if key is None:
        return ()
    return (key,) if isinstance(key, str) else tuple(key)


def key_idle_ttl(cfg: Config) -> float | None:
    """``model.key_idle_ttl`` in seconds (None: keys are never forgotten).

    Raises
    ------
    ConfigError
        Not a duration (``"30d"``, ``"12h"``, a number of seconds) or not positive.

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> key_idle_ttl(parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]},
    ...                            "model": {"key_idle_ttl": "30d"}}))
    2592000.0
    """
    ttl = cfg.model.key_idle_ttl
    return None if ttl is None else parse_duration(ttl, "model.key_idle_ttl")


def screen_keys(decoded: DecodedBatch, parts: Sequence[str]
                ) -> tuple[DecodedBatch, list[str]]:
    """``decoded`` without its rows that have no usable key, and the keys of the rest.

    The dropped rows become rejections (reason ``invalid_key``), in row order with the
    decoder's own.

    Parameters
    ----------
    decoded
        A decoded batch.
    parts
        The key fields (one: a plain key; several: a composite key).

    Returns
    -------
    (DecodedBatch, list of str)
        The batch of the rows with a key, and their keys (shape (n_kept,)).

    Examples
    --------
    >>> from streamem.features import FeatureExtractor
    >>> fx = FeatureExtractor(["v"])
    >>> b = fx.decode([b'{"v": 1, "s": "x", "p": 1}', b'{"v": 2, "s": "x"}',
    ...                b'{"v": 3, "s": "", "p": 2}', b'{"v": 4, "s": "y|z", "p": 3}'])
    >>> ok, keys = screen_keys(b, ["s", "p"])
    >>> keys, ok.kept, [(r.index, r.reason) for r in ok.rejected]
    (['x|1', 'y\\\\|z|3'], [0, 3], [(1, 'invalid_key'), (2, 'invalid_key')])
    """
    paths = [tuple(p.split(".")) for p in parts]
    recs = [decoded.record(i) for i in range(len(decoded.kept))]
    bad: dict[int, str] = {}
    columns: list[list[Any]] = []
    for name, path in zip(parts, paths, strict=True):
        col = [r.get(path[0]) if len(path) == 1 else lookup(r, path) for r in recs]
        columns.append(col)
        for i, why in check_keys(col, name).items():
            bad.setdefault(i, why.detail)
        for i, v in enumerate(col):
            if v is None:
                bad.setdefault(i, f"{name} is missing; scope key needs a key on every event")
    if len(parts) == 1:
        keys = [v if isinstance(v, str) else str(v) for v in columns[0]]
    else:
        keys = [join_key(row) for row in zip(*columns, strict=True)]
    if not bad:
        return decoded, keys
    good = [i for i in range(len(keys)) if i not in bad]
    rejected = [*decoded.rejected, *(Rejection(decoded.kept[i], "invalid_key", bad[i])
                                     for i in sorted(bad))]
    rejected.sort(key=lambda r: r.index)
    return decoded.subset(good, rejected), [keys[i] for i in good]

