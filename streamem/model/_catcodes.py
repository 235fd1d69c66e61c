"""A batch of categorical values as integer codes with a per-batch vocabulary (pure numpy).

:class:`CategoricalBatch` is what the decoder hands the detector for ``fields.categorical``:
``codes[i, f]`` indexes ``vocab[f]`` (the distinct texts of field ``f`` in this batch), and
``-1`` marks a missing value (absent, null or empty), which the model marginalises exactly as
it does a NaN reading. The model maps each batch's vocabulary (a few distinct values) onto
its own slots, so no step runs once per event in Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.errors import InvalidInputError

__all__ = ["MISSING", "CategoricalBatch", "encode_texts"]

#: the code of a missing value
MISSING = -1


def encode_texts(texts: Sequence[str]) -> tuple[tuple[str, ...], NDArray[np.int64]]:
    """Distinct texts (sorted) and each text's index among them; ``""`` is coded missing.

    Examples
    --------
    >>> vocab, codes = encode_texts(["GET", "POST", "", "GET"])
    >>> vocab, codes.tolist()
    (('GET', 'POST'), [0, 1, -1, 0])
    """
    if not len(texts):
        return (), np.zeros(0, dtype=np.int64)
    vocab, inv = np.unique(np.asarray(texts, dtype=str), return_inverse=True)
    codes = inv.reshape(-1).astype(np.int64)
    values = vocab.tolist()
    if values and values[0] == "":  # np.unique sorts: the empty text comes first
        codes -= 1
        values = values[1:]
    return tuple(values), codes


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return v if isinstance(v, str) else str(v)


@dataclass(frozen=True)
class CategoricalBatch:
    """Categorical values of a batch of events, as codes into a per-batch vocabulary.

    Parameters
    ----------
    fields
        Field names, in column order.
    codes
        Shape (n_events, n_fields), int: index into ``vocab[f]``, or ``-1`` when missing.
    vocab
        Per field, the distinct values (texts) of the batch.

    Examples
    --------
    >>> b = CategoricalBatch.of({"method": ["GET", "PURGE", None], "status": [200, 500, 200]})
    >>> b.codes.tolist(), b.vocab
    ([[0, 0], [1, 1], [-1, 0]], (('GET', 'PURGE'), ('200', '500')))
    >>> b.values(1), len(b.rows(np.array([True, False, True])))
    ({'method': 'PURGE', 'status': '500'}, 2)
    """

    fields: tuple[str, ...]
    codes: NDArray[np.int64]
    vocab: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @classmethod
    def of(cls, columns: CategoricalBatch | Mapping[str, Sequence[Any]],
           fields: Sequence[str] | None = None) -> CategoricalBatch:
        """A batch from ``{field: values}`` (None or ``""`` = missing; other values by their
        text: ``500`` and ``"500"`` alike), or the batch itself, in the order of ``fields``.

        Raises
        ------
        InvalidInputError
            A field of ``fields`` is absent, or the columns differ in length.
        """
        if isinstance(columns, CategoricalBatch):
            if fields is None or tuple(fields) == columns.fields:
                return columns
            columns = {f: [columns.values(i)[f] for i in range(len(columns))]
                       for f in columns.fields}
        names = tuple(columns) if fields is None else tuple(fields)
        missing = [f for f in names if f not in columns]
        if missing:
            raise InvalidInputError(f"categorical has no column {missing[0]!r}; give one value "
                                    f"per event for each of {list(names)}")
        lengths = {len(columns[f]) for f in names}
        if len(lengths) > 1:
            raise InvalidInputError(f"categorical columns have lengths {sorted(lengths)}; give "
                                    "one value per event in each")
        n = lengths.pop() if lengths else 0
        vocab, codes = [], np.empty((n, len(names)), dtype=np.int64)
        for f, name in enumerate(names):
            col = columns[name]
            texts = col if set(map(type, col)) <= {str} else [_text(v) for v in col]
            v, codes[:, f] = encode_texts(texts)
            vocab.append(v)
        return cls(names, codes, tuple(vocab))

    def rows(self, index: slice | NDArray[Any]) -> CategoricalBatch:
        """The batch of the selected rows (a slice, a boolean mask or positions)."""
        return CategoricalBatch(self.fields, self.codes[index], self.vocab)

    def values(self, i: int) -> dict[str, str | None]:
        """``{field: value}`` of event ``i`` (None where missing)."""
        return {name: (None if c < 0 else self.vocab[f][c])
                for f, (name, c) in enumerate(zip(self.fields, self.codes[i].tolist(),
                                                  strict=True))}
