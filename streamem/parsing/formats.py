"""Text log formats: lines to records (dicts of typed fields), stdlib ``re`` only.

A :class:`TextFormat` is a compiled regular expression whose named groups become the fields
of a record, plus a type per field that is not text (``int``, ``float``, or a time converter
from :mod:`streamem.parsing.times`, which gives epoch seconds). :data:`PRESETS` holds the
formats of common logs, with the field names of the format's own variables:

- ``nginx``: the combined log format, and ``$request_time $upstream_response_time`` when the
  line ends with them;
- ``apache``: the common and combined access logs; ``apache_error``: the error log (2.2 and
  2.4 layouts);
- ``syslog``: RFC 5424, and RFC 3164 (BSD) with a classic or an ISO timestamp;
- ``logfmt``: ``key=value key2="quoted value"`` pairs (:class:`LogfmtFormat`).

Per line the work is one regex match; the declared conversions and the records are then
made for the whole batch at once (:mod:`streamem.parsing.rows`). A typed field that is ``-``
(the log's "no value") or absent is None. Every preset regex uses possessive quantifiers, so
a hostile line fails in time linear in its length (a ``source.pattern`` runs as written).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import methodcaller, setitem
from typing import Any

from streamem.parsing.rows import line_columns, line_records, records
from streamem.parsing.times import TIME_TYPES

__all__ = ["PRESETS", "TYPES", "LineError", "LogfmtFormat", "TextFormat", "regex_format"]

#: a line that could not be used: ``(reason, detail)``, reason as in the dead-letter sink
LineError = tuple[str, str]
Record = dict[str, Any]


def _number(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(v: str) -> Any:
        try:
            return kind(v)
        except ValueError:
            if v in ("-", ""):
                return None
            if kind is float and ("," in v or ":" in v):  # nginx lists one time per upstream
                return sum(float(p) for p in re.split(r"[,:]\s*", v) if p.strip() != "-")
            raise
    convert.__name__ = kind.__name__
    return convert


def _text(v: str) -> str:
    return v


#: the names ``source.types`` accepts, with their converters (``-`` and ``""`` give None)
TYPES: dict[str, Callable[[str], Any]] = {
    "int": _number(int), "float": _number(float), "str": _text,
    **{k: _number(f) for k, f in TIME_TYPES.items()},
}
# the same without the fallbacks: tried first, TYPES decides only for a line they reject
_FAST: dict[str, Callable[[str], Any]] = {"int": int, "float": float, **TIME_TYPES}
_TIME_NAMES = frozenset(TIME_TYPES)


@dataclass(frozen=True)
class TextFormat:
    """A line format: regexes tried in order (most formats have one) and field types.

    Parameters
    ----------
    name
        The format's name, given in the detail of lines that do not match.
    regexes
        Compiled patterns; the first that matches at the start of the line wins. Their named
        groups are the record's fields.
    types
        ``{field: type name}`` for the fields that are not text (see :data:`TYPES`).
    timestamp
        The field that holds the event time (None: the format has none).
    derived
        Fields computed from others after the conversions, ``(names, function of the batch's
        records)`` (syslog: ``facility`` and ``severity`` from ``pri``).

    Examples
    --------
    >>> f = regex_format(r"(?P<level>\\w+) took (?P<ms>\\d+)ms", {"ms": "int"})
    >>> f.parse([b"INFO took 12ms", b"garbage"])
    [{'level': 'INFO', 'ms': 12}, ('parse_error', 'the line does not match source.pattern')]
    """

    name: str
    regexes: tuple[re.Pattern[str], ...]
    types: Mapping[str, str] = field(default_factory=dict)
    timestamp: str | None = None
    derived: tuple[tuple[str, ...], Callable[[list[Record]], None]] | None = None

    @property
    def fields(self) -> list[str]:
        """Every field name, in pattern order (then the derived ones)."""
        out: list[str] = []
        for rx in self.regexes:
            out += [g for g in rx.groupindex if g not in out]
        return out + list(self.derived[0] if self.derived else ())

    def with_types(self, types: Mapping[str, str]) -> TextFormat:
        """A copy whose types are updated by ``types`` (``source.types``)."""
        return TextFormat(self.name, self.regexes, {**self.types, **types}, self.timestamp,
                          self.derived)

    def _miss(self) -> LineError:
        where = "source.pattern" if self.name == "regex" else f"the {self.name} format"
        return ("parse_error", f"the line does not match {where}")

    def _match(self) -> Callable[[str], re.Match[str] | None]:
        if len(self.regexes) == 1:
            return self.regexes[0].match
        matchers = [rx.match for rx in self.regexes]

        def match(s: str) -> re.Match[str] | None:
            for m in matchers:
                hit = m(s)
                if hit is not None:
                    return hit
            return None
        return match

    def parse_texts(self, texts: Sequence[str]) -> list[Record | LineError]:
        """Records (or why not) for decoded lines without their line ends.

        The work is column-wise: all matches, then :mod:`streamem.parsing.rows` converts
        each typed field for the whole batch and builds every record at once. A
        one-pattern format first tries the batch as if every line matched
        (:func:`~streamem.parsing.rows.line_records`); a batch with a line that does not
        is matched again, keeping the positions.
        """
        if len(self.regexes) == 1:  # the common case: every line matches
            done = line_records(self.regexes[0], texts, self.types, _FAST, TYPES,
                                _TIME_NAMES, self.name)
            if done is not None:
                if self.derived is not None:
                    self.derived[1](done[0])
                return _rejected(*done)
        found = list(map(self._match(), texts))
        misses = None in found
        hits: list[re.Match[str]] = [m for m in found if m is not None] if misses else \
            found  # type: ignore[assignment]
        recs, bad = records(self.regexes, hits, self.types, _FAST, TYPES, _TIME_NAMES,
                            self.name)
        if self.derived is not None:
            self.derived[1](recs)
        out = _rejected(recs, bad)
        if misses:
            miss, it = self._miss(), iter(out)
            out = [miss if m is None else next(it) for m in found]
        return out

    def parse(self, payloads: Sequence[bytes]) -> list[Record | LineError]:
        """Records (or why not) for raw lines; see :func:`decode_lines`."""
        return self.parse_texts(decode_lines(payloads))

    def columns(self, payloads: Sequence[bytes], fields: Sequence[str]
                ) -> dict[str, list[Any]] | None:
        """``fields`` of raw lines as typed columns, when every line matches the one
        pattern of a format without derived fields (else None: use :meth:`parse`)."""
        if len(self.regexes) != 1 or self.derived is not None:
            return None
        return line_columns(self.regexes[0], decode_lines(payloads), fields, self.types,
                            _FAST, _TIME_NAMES)


def _rejected(recs: list[Record], bad: dict[int, LineError]) -> list[Record | LineError]:
    """``recs`` with the rejections of ``bad`` in their places."""
    if not bad:
        return recs  # type: ignore[return-value]
    out: list[Record | LineError] = list(recs)
    for i, why in bad.items():
        out[i] = why
    return out


def decode_lines(payloads: Sequence[bytes]) -> list[str]:
    """Lines as text: one UTF-8 decode per batch, invalid bytes as ``\\xNN`` escapes (as
    nginx writes them), a trailing CR dropped.

    Examples
    --------
    >>> decode_lines([b"a\\r", b"caf\\xc3\\xa9 \\xff"])
    ['a', 'café \\\\xff']
    """
    joined = b"\n".join(payloads)
    if joined.count(b"\n") != len(payloads) - 1:  # a payload holds a newline (Kafka)
        return [p.decode("utf-8", "backslashreplace").rstrip("\r") for p in payloads]
    text = joined.decode("utf-8", "backslashreplace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if text.endswith("\r"):
            text = text[:-1]
    return text.split("\n") if payloads else []


_LOGFMT = re.compile(r'([^\s="]++)=("(?:[^"\\]|\\.)*+"|[^\s"]*+)')
_LOGFMT_LINE = re.compile(r'\s*+(?:[^\s="]++=(?:"(?:[^"\\]|\\.)*+"|[^\s"]*+)(?:\s++|\Z))++')
_UNESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class LogfmtFormat:
    """``key=value`` pairs (logfmt); quoted values may hold spaces and ``\\"`` escapes.

    Values are text unless ``types`` says otherwise (the feature extraction reads numeric
    text as numbers anyway). A line that is not all pairs (a bare word, an unclosed quote)
    does not match.

    Examples
    --------
    >>> recs = LogfmtFormat(types={"ms": "int"}).parse([b'msg="a \\\\"b\\\\"" ms=5', b"x y"])
    >>> recs[0], recs[1][0]
    ({'msg': 'a "b"', 'ms': 5}, 'parse_error')
    """

    name: str = "logfmt"
    types: Mapping[str, str] = field(default_factory=dict)
    timestamp: str | None = "time"
    fields: tuple[str, ...] = ()

    def with_types(self, types: Mapping[str, str]) -> LogfmtFormat:
        """A copy whose types are updated by ``types``."""
        return LogfmtFormat(self.name, {**self.types, **types}, self.timestamp)

    def parse(self, payloads: Sequence[bytes]) -> list[Record | LineError]:
        """Records (or why not) for raw lines."""
        convs = tuple((f, TYPES[t]) for f, t in self.types.items() if t != "str")
        miss: LineError = ("parse_error", "the line does not match the logfmt format")
        out: list[Record | LineError] = []
        whole = _LOGFMT_LINE.fullmatch
        for s in decode_lines(payloads):
            pairs = _LOGFMT.findall(s) if whole(s) else None
            if not pairs:
                out.append(miss)
                continue
            rec: Record = {}
            for k, v in pairs:
                if v[:1] == '"':
                    v = v[1:-1]
                    if "\\" in v:
                        v = _UNESCAPE.sub(r"\1", v)
                rec[k] = v
            try:
                for f, conv in convs:
                    raw = rec.get(f)
                    if raw is not None:
                        rec[f] = conv(raw)
            except (ValueError, KeyError, IndexError):
                out.append(("wrong_type", f"{f}={str(rec.get(f))[:40]!r} is not a "
                            f"{self.types[f]} (source.types)"))
                continue
            out.append(rec)
        return out


def regex_format(pattern: str, types: Mapping[str, str] | None = None) -> TextFormat:
    """The ``source.format: regex`` format of ``source.pattern`` (matched at line start).

    Raises
    ------
    re.error
        When the pattern does not compile (the config check reports it with its path).
    """
    return TextFormat("regex", (re.compile(pattern),), dict(types or {}))


_Q = r'[^"\\]*+(?:\\.[^"\\]*+)*+'  # the inside of a quoted field, with \" escapes (Apache)
# nginx escapes " and non-printable bytes as \xHH, so its quoted fields hold no quote at all;
# a request line that is not METHOD URI [PROTOCOL] (a TLS handshake to the plain port, say)
# leaves the three request fields None
_REQUEST = (r'"(?:(?P<request_method>[A-Z][A-Z0-9_-]*+) (?P<request_uri>[^ "]++)'
            r'(?: (?P<server_protocol>[A-Z]++/[0-9.]++))?)?+[^"]*+"')
_NGINX = (
    r"(?P<remote_addr>\S++) - (?P<remote_user>\S++) \[(?P<time_local>[^\]]++)\] " + _REQUEST +
    r' (?P<status>\d{3}) (?:(?P<body_bytes_sent>\d++)|-) "(?P<http_referer>[^"]*+)" '
    r'"(?P<http_user_agent>[^"]*+)"'
    r'(?: "?(?:rt=|request_time=)?(?:(?P<request_time>\d++(?:\.\d++)?)|-)"?'
    r'(?: "?(?:urt=|upstream_response_time=)?'
    r'(?:(?P<upstream_response_time>[\d.]++(?:[,:] [\d.-]++)*+)|-)"?)?)?(?:\s.*+)?\Z'
)
_APACHE = (
    r"(?P<remote_host>\S++) (?P<remote_logname>\S++) (?P<remote_user>\S++) "
    r"\[(?P<time>[^\]]++)\] "
    r'"(?:(?P<request_method>[A-Z][A-Z0-9_-]*+) (?P<request_uri>[^ "\\]*+(?:\\.[^ "\\]*+)*+)'
    r'(?: (?P<protocol>[A-Z]++/[0-9.]++))?)?+' + _Q + '"'
    r' (?:(?P<status>\d{3})|-) (?:(?P<bytes_sent>\d++)|-)'
    r'(?: "(?P<referer>' + _Q + r')" "(?P<user_agent>' + _Q + r')")?(?:\s.*+)?\Z'
)
_APACHE_ERROR = (
    r"\[(?P<time>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d++)? \d{4})\] "
    r"\[(?:(?P<module>[^:\]\s]*+):)?(?P<level>[a-z]++\d?)\]"
    r"(?: \[pid (?P<pid>\d++)(?::tid (?P<tid>\d++))?\])?"
    r"(?: \[client (?P<client>[^\]]++)\])? ?(?P<message>.*+)\Z"
)
_SYSLOG_5424 = (
    r"<(?P<pri>\d{1,3})>(?P<version>\d{1,2}) (?P<timestamp>\S++) (?P<hostname>\S++) "
    r"(?P<app_name>\S++) (?P<procid>\S++) (?P<msgid>\S++) "
    r'(?P<structured_data>-|(?:\[(?:[^\]"\\]|\\.|"' + _Q + r'")*+\])++)'
    r"(?: \ufeff?(?P<message>.*+))?\Z"
)
_SYSLOG_3164 = (
    r"(?:<(?P<pri>\d{1,3})>)?"
    r"(?P<timestamp>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S++) "
    r"(?P<hostname>\S++) (?P<app_name>[^\s\[:]++)(?:\[(?P<procid>[^\]]*+)\])?(?::|(?= )|\Z)"
    r" ?(?P<message>.*+)\Z"
)

def _facility_severity(recs: list[Record]) -> None:
    """``facility`` and ``severity`` from ``pri`` (RFC 5424 6.2.1: PRI = facility * 8 +
    severity); None without a PRI (or with one that is not a number)."""
    pris = list(map(methodcaller("get", "pri"), recs))
    n_none = pris.count(None)
    if n_none == len(pris):  # BSD syslog files seldom carry a PRI
        list(map(setitem, recs, repeat("facility"), repeat(None, n_none)))
        list(map(setitem, recs, repeat("severity"), repeat(None, n_none)))
        return
    for rec, p in zip(recs, pris, strict=True):
        ok = type(p) is int
        rec["facility"], rec["severity"] = (p >> 3, p & 7) if ok else (None, None)


#: the preset formats, by ``source.format`` name
PRESETS: dict[str, TextFormat | LogfmtFormat] = {
    "nginx": TextFormat("nginx", (re.compile(_NGINX),), {
        "time_local": "clf_time", "status": "int", "body_bytes_sent": "int",
        "request_time": "float", "upstream_response_time": "float"}, "time_local"),
    "apache": TextFormat("apache", (re.compile(_APACHE),), {
        "time": "clf_time", "status": "int", "bytes_sent": "int"}, "time"),
    "apache_error": TextFormat("apache_error", (re.compile(_APACHE_ERROR),), {
        "time": "ctime", "pid": "int", "tid": "int"}, "time"),
    "syslog": TextFormat("syslog", (re.compile(_SYSLOG_5424), re.compile(_SYSLOG_3164)), {
        "pri": "int", "version": "int", "timestamp": "syslog_time"}, "timestamp",
        (("facility", "severity"), _facility_severity)),
    "logfmt": LogfmtFormat(),
}
