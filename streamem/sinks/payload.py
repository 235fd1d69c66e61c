"""JSON documents for anomalies and incidents, shared by every sink (pure: stdlib only).

Every sink writes the same shapes: an anomaly is ``record.to_dict()`` plus
``"type": "anomaly"``; an incident is its fields plus ``"type": "incident"`` and the last
anomaly (or ``null``). Non-finite floats (a missing feature is NaN) become ``null``, so the
output is strict JSON that any parser accepts.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from streamem.alerting.records import AnomalyRecord, Incident

__all__ = ["anomaly_document", "delivery_id", "dumps", "header_id", "incident_document",
           "jsonable"]

_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")
_HEADER_MAX = 256


def jsonable(value: Any) -> Any:
    """Return ``value`` with non-finite floats replaced by ``None`` and tuples as lists.

    Parameters
    ----------
    value
        A tree of dicts, lists, tuples, strings, numbers, booleans and ``None``.

    Returns
    -------
    Any
        The same tree, safe for strict JSON; unknown objects become their ``str()``.

    Examples
    --------
    >>> jsonable({"a": float("nan"), "b": (1.0, float("inf")), "c": "x"})
    {'a': None, 'b': [1.0, None], 'c': 'x'}
    """
    kind = type(value)  # exact built-in types first: ABC isinstance checks are slow
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(k): jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [jsonable(v) for v in value]
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def dumps(document: Mapping[str, Any] | list[Any]) -> str:
    """Serialise a document as one compact line of strict JSON (sorted keys, ASCII only).

    Parameters
    ----------
    document
        The document to serialise.

    Returns
    -------
    str
        One line without a trailing newline; equal documents give equal text, so an HMAC
        over it is reproducible.

    Examples
    --------
    >>> dumps({"b": 1, "a": float("nan"), "t": "é"})
    '{"a":null,"b":1,"t":"\\\\u00e9"}'
    """
    return json.dumps(jsonable(document), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False)


def anomaly_document(record: AnomalyRecord) -> dict[str, Any]:
    """The JSON document of one anomaly: ``record.to_dict()`` plus ``"type": "anomaly"``.

    Parameters
    ----------
    record
        The anomaly.

    Returns
    -------
    dict
        A plain, JSON-serialisable dict.

    Examples
    --------
    >>> r = AnomalyRecord(id="f:0:1", key="pump-1", timestamp=1.0, score=30.0,
    ...                   tail_probability=1e-6, severity=91.0, threshold=20.0)
    >>> d = anomaly_document(r); d["type"], d["id"], d["severity"]
    ('anomaly', 'f:0:1', 91.0)
    """
    document = record.to_dict()
    document["type"] = "anomaly"
    return document


def incident_document(incident: Incident) -> dict[str, Any]:
    """The JSON document of one incident transition, with ``"type": "incident"``.

    Parameters
    ----------
    incident
        The incident (firing or resolved).

    Returns
    -------
    dict
        Its fields; ``last`` is the last anomaly's document or ``None``.

    Examples
    --------
    >>> i = Incident(id="pump-1:1000", key="pump-1", status="resolved", started_at=1.0,
    ...              ended_at=9.0, max_severity=88.0, last=None, count=3)
    >>> d = incident_document(i); d["type"], d["status"], d["count"], d["last"]
    ('incident', 'resolved', 3, None)
    """
    return {
        "type": "incident",
        "id": incident.id,
        "key": incident.key,
        "status": incident.status,
        "started_at": incident.started_at,
        "ended_at": incident.ended_at,
        "max_severity": incident.max_severity,
        "count": incident.count,
        "last": None if incident.last is None else anomaly_document(incident.last),
    }


def delivery_id(item: AnomalyRecord | Incident) -> str:
    """The de-duplication id of one delivery (``X-Streamem-Id``).

    An anomaly's id is its record id. An incident sends two transitions under one incident
    id, so the status is appended: the resolution is never mistaken for a repeat.

    Parameters
    ----------
    item
        An anomaly or an incident.

    Returns
    -------
    str
        A stable id: equal for redeliveries of the same thing, different otherwise.

    Examples
    --------
    >>> delivery_id(Incident(id="k:5", key="k", status="firing", started_at=5.0,
    ...                      ended_at=None, max_severity=80.0, last=None))
    'k:5/firing'
    """
    if isinstance(item, Incident):
        return f"{item.id}/{item.status}"
    return item.id


def header_id(ident: str) -> str:
    """The ``X-Streamem-Id`` header value of a delivery id: printable ASCII, never raw input.

    An id comes from the event (``fields.id``), so it may hold CR, LF, NUL or non-ASCII
    characters that cannot go into an HTTP header as they are. Every character outside
    printable ASCII, and ``%`` and space, is percent-encoded (UTF-8, as in RFC 3986), so
    ordinary ids are unchanged and ``urllib.parse.unquote(value, errors="surrogatepass")``
    gives the id back. An encoding longer than 256 characters is replaced by
    ``sha256:`` and the hex SHA-256 of the id's UTF-8 bytes. The JSON body always carries the
    original id.

    Parameters
    ----------
    ident
        The delivery id (see :func:`delivery_id`).

    Returns
    -------
    str
        A value that is safe in any HTTP header and distinct for distinct ids.

    Examples
    --------
    >>> header_id("events:0:1"), header_id("k:5/firing")
    ('events:0:1', 'k:5/firing')
    >>> header_id("ev\\r\\nX-Injected: 1"), header_id("é 100%")
    ('ev%0D%0AX-Injected:%201', '%C3%A9%20100%25')
    >>> header_id("x" * 300)[:15]
    'sha256:0d4e2ca9'
    """
    encoded = quote(ident, safe=_HEADER_SAFE, errors="surrogatepass")
    if len(encoded) <= _HEADER_MAX:
        return encoded
    return "sha256:" + hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()
