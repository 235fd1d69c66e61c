"""JSON lines: the proof that one batched parse took each object from one line, and the
careful per-line parse that names what is wrong (pure: stdlib + numpy)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from streamem.parsing.eventmeta import Bad

__all__ = ["framed", "lenient_json"]

_OPEN = ord("{")
_first_byte = itemgetter(0)


def framed(doc: bytes, payloads: Sequence[bytes]) -> bool:
    """True when the parse of ``doc`` (``[`` + the payloads joined by ``,`` + ``]``), which
    gave exactly one JSON object per payload, took each object from exactly one payload.

    It holds when every payload starts with ``{`` and ``doc`` holds no other ``{``: each of
    the N objects needs an opening ``{`` of its own outside strings, so all N braces open
    top-level objects, object j opens at the start of payload j, and it must close before
    object j+1 opens, so inside payload j (a payload with anything but whitespace after its
    object would have given more values, or a parse error). Braces inside strings or nested
    objects fail the test; such batches are decoded per payload.

    Examples
    --------
    >>> lines = [b'{"a":1},{"a":2}', b'{"a":3', b'"b":4}']
    >>> framed(b"[" + b",".join(lines) + b"]", lines)
    False
    >>> framed(b'[{"a":1},{"a":2}]', [b'{"a":1}', b'{"a":2}'])
    True
    """
    try:
        if bytes(map(_first_byte, payloads)) != b"{" * len(payloads):
            return False
    except IndexError:  # an empty payload
        return False
    return int(np.count_nonzero(np.frombuffer(doc, np.uint8) == _OPEN)) == len(payloads)


def lenient_json(payload: bytes) -> Any:
    """Parse with the stdlib (which reads NaN, Infinity and big integers, so the caller can
    name the bad value); every failure becomes a ``Bad``, never an exception of its own."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Bad("parse_error", f"not UTF-8 at byte {exc.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Bad("parse_error", f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise Bad("parse_error", "JSON nested too deeply (over 1000 levels); flatten the "
                   "event") from None
    except ValueError as exc:  # an integer of more digits than int() takes
        raise Bad("invalid_value", f"invalid number: {str(exc)[:80]}") from None
