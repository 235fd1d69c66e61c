"""The column-wise text-format path gives exactly what a naive per-line parse gives.

The reference below matches one line at a time, takes ``groupdict`` and applies the
lenient converter of each typed field: the plain meaning of a text format. The fast path
(``TextFormat.parse``: one match per line, then whole columns converted and every record
built at once) must equal it on every preset, over every Loghub sample and on hostile lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from testkit.logs import read_log

from streamem.parsing import PRESETS, regex_format
from streamem.parsing.formats import TYPES, LineError, LogfmtFormat, TextFormat, decode_lines
from streamem.parsing.rows import records
from streamem.parsing.times import TIME_TYPES

HOSTILE = [
    b'203.0.113.7 - - [02/Jan/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8"\r',
    b'203.0.113.7 - - [02/Jan/2026:10:00:00 +0000] "GET /caf\xc3\xa9\xff HTTP/1.1" 200 612 '
    b'"-" "\xfe\xfe"',
    b'203.0.113.7 - - [02/Jan/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 -',  # cut short
    b'203.0.113.7 - - [99/Foo/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
    b'203.0.113.7 - - [02/Jan/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 0.1 x,y',
    b'203.0.113.7 - - [02/Jan/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-" - 0.2, -',
    b"", b"\r", b"-", b"\x00\x01\x02", b"a=1 b=\"unclosed", b"<13>1 - - - - - -",
    b"[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok", b"Jan  2 10:00:00 h app: x",
    b'192.0.2.1 - - [02/Jan/2026:10:00:02 +0000] "\\x16\\x03" 400 157 "-" "-" 0.001 -',
    "ünïcödé - - [02/Jan/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"".encode(),
    b"x" * 5000, b'1.2.3.4 - - [02/Jan/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-"',
]


def per_line(fmt: TextFormat, payloads: Sequence[bytes]) -> list[dict[str, Any] | LineError]:
    """The naive reference: match, groupdict and convert, one line at a time."""
    where = "source.pattern" if fmt.name == "regex" else f"the {fmt.name} format"
    out: list[dict[str, Any] | LineError] = []
    for s in decode_lines(payloads):
        m = next((hit for rx in fmt.regexes if (hit := rx.match(s)) is not None), None)
        if m is None:
            out.append(("parse_error", f"the line does not match {where}"))
            continue
        rec: dict[str, Any] = m.groupdict()
        why: LineError | None = None
        for f, t in fmt.types.items():
            if t == "str" or (f not in rec and t not in TIME_TYPES):
                continue
            v = rec.get(f)
            try:
                rec[f] = None if v is None else TYPES[t](v)
            except (ValueError, KeyError, IndexError, TypeError):
                why = why or ("wrong_type", f"{f}={str(v)[:40]!r} is not a {t} "
                              f"(the {fmt.name} format's type for {f})")
        if why is None and fmt.derived is not None:
            fmt.derived[1]([rec])
        out.append(rec if why is None else why)
    return out


TEXT_PRESETS = sorted(k for k, f in PRESETS.items() if isinstance(f, TextFormat))


def _all_loghub(loghub: Path) -> list[bytes]:
    systems = sorted(p.name for p in loghub.iterdir() if (p / f"{p.name}_2k.log").is_file())
    return [ln for s in systems for ln in read_log(loghub, s)]


@pytest.mark.parametrize("name", TEXT_PRESETS)
def test_every_preset_equals_the_per_line_reference_on_loghub(loghub: Path, name: str) -> None:
    from bench.logs import nginx_lines

    fmt = PRESETS[name]
    assert isinstance(fmt, TextFormat)
    lines = _all_loghub(loghub) + nginx_lines(500)
    got = fmt.parse(lines)
    assert got == per_line(fmt, lines)
    assert any(isinstance(r, dict) for r in got)  # the preset reads some of them
    # batches cut anywhere give the same records
    assert [r for i in range(0, len(lines), 777) for r in fmt.parse(lines[i:i + 777])] == got


@pytest.mark.parametrize("name", TEXT_PRESETS)
def test_hostile_lines_equal_the_reference_with_the_format_named(name: str) -> None:
    fmt = PRESETS[name]
    assert isinstance(fmt, TextFormat)
    got = fmt.parse(HOSTILE)
    assert got == per_line(fmt, HOSTILE)
    misses = [r for r in got if isinstance(r, tuple) and r[0] == "parse_error"]
    assert misses and all(f"the {name} format" in r[1] for r in misses)


def test_nginx_hostile_lines_in_detail() -> None:
    got = PRESETS["nginx"].parse(HOSTILE[:6])
    crlf, utf8, short, bad_time, bad_float, upstream = got
    assert isinstance(crlf, dict) and crlf["http_user_agent"] == "curl/8"
    assert isinstance(utf8, dict) and utf8["request_uri"] == "/café\\xff"
    assert utf8["http_user_agent"] == "\\xfe\\xfe"
    assert short == ("parse_error", "the line does not match the nginx format")
    assert isinstance(bad_time, tuple) and bad_time[0] == "wrong_type"
    assert "time_local" in bad_time[1]
    # a trailing field that is not a time is extra text, as nginx's own extra variables
    assert isinstance(bad_float, dict) and bad_float["request_time"] == 0.1
    assert bad_float["upstream_response_time"] is None
    assert isinstance(upstream, dict) and upstream["request_time"] is None
    assert upstream["upstream_response_time"] == pytest.approx(0.2)


def test_a_partial_last_line_is_parsed_as_it_stands() -> None:
    whole = HOSTILE[0].rstrip(b"\r")
    fmt = PRESETS["nginx"]
    for cut in (len(whole) - 1, len(whole) - 8, 40, 1):
        lines = [whole, whole[:cut]]
        assert fmt.parse(lines) == per_line(fmt, lines)  # type: ignore[arg-type]


def test_regex_format_with_types_and_unnamed_groups_equals_the_reference() -> None:
    fmt = regex_format(r"(?P<level>\w+) (x|y)? ?(?P<ms>\S+)(?: (?P<at>\S+))?",
                       {"ms": "float", "at": "iso_time"})
    lines = [b"INFO x 12.5 2026-01-02T10:00:00Z", b"WARN - -", b"ERR y -inf", b"E 1 bad",
             b"E 2", b"!!", b"DEBUG 1e3 2026-01-02T10:00:00.5+01:00"]
    got = fmt.parse(lines)
    assert got == per_line(fmt, lines)
    assert got[0] == {"level": "INFO", "ms": 12.5, "at": 1767348000.0}
    assert got[3] == ("wrong_type", "at='bad' is not a iso_time (the regex format's type for at)")
    assert got[5] == ("parse_error", "the line does not match source.pattern")


def test_records_of_no_hits_and_of_a_pattern_without_typed_groups() -> None:
    rx = re.compile(r"(?P<a>\w)(?P<b>\w)?")
    assert records([rx], [], {"a": "int"}, {"int": int}, TYPES, frozenset(), "regex") == ([], {})
    hits = [m for m in map(rx.match, ["xy", "z"]) if m is not None]
    assert records([rx], hits, {}, {}, TYPES, frozenset(), "regex") == (
        [{"a": "x", "b": "y"}, {"a": "z", "b": None}], {})


def test_syslog_mixed_layouts_with_a_time_field_one_layout_lacks(loghub: Path) -> None:
    bsd = read_log(loghub, "OpenSSH")[:300]
    rfc = [b"<34>1 2026-01-02T10:00:00.5Z host app 12 ID47 - hello",
           b"<165>1 2026-01-02T10:00:01+01:00 h a - - [x@1 k=\"v\"] msg", b"<999>1 - - - - - -",
           b"<13>1 2026-01-02T10:00:02Z h a - - 2026-01-02T10:00:03Z"]
    lines = [ln for pair in zip(bsd, rfc * 75, strict=True) for ln in pair]
    base = PRESETS["syslog"]
    assert isinstance(base, TextFormat)
    for fmt in (base, base.with_types({"structured_data": "iso_time", "msgid": "int"})):
        got = fmt.parse(lines)
        assert got == per_line(fmt, lines)
        assert sum(isinstance(r, dict) and "version" in r for r in got) >= 75
        assert sum(isinstance(r, dict) and "version" not in r for r in got) == 300


def logfmt_per_line(fmt: LogfmtFormat, payloads: Sequence[bytes]
                    ) -> list[dict[str, Any] | LineError]:
    """The naive logfmt reference: check, find the pairs, unquote and convert, per line."""
    pair = re.compile(r'([^\s="]++)=("(?:[^"\\]|\\.)*+"|[^\s"]*+)')
    line = re.compile(r'\s*+(?:[^\s="]++=(?:"(?:[^"\\]|\\.)*+"|[^\s"]*+)(?:\s++|\Z))++')
    out: list[dict[str, Any] | LineError] = []
    for s in decode_lines(payloads):
        pairs = pair.findall(s) if line.fullmatch(s) else []
        if not pairs:
            out.append(("parse_error", "the line does not match the logfmt format"))
            continue
        rec = {k: re.sub(r"\\(.)", r"\1", v[1:-1]) if v[:1] == '"' else v for k, v in pairs}
        why: LineError | None = None
        for f, t in fmt.types.items():
            if t != "str" and f in rec and why is None:
                try:
                    rec[f] = TYPES[t](rec[f])
                except (ValueError, KeyError, IndexError):
                    why = ("wrong_type", f"{f}={rec[f][:40]!r} is not a {t} (source.types)")
        out.append(rec if why is None else why)
    return out


LOGFMT = [b'time=2026-01-02T10:00:00Z level=info msg="a \\"b\\" c" ms=5 n=-',
          b"ms=x n=1", b"ms=1 n=y", b"ms=1 ms=2 n=", b"a b", b'a="open', b"", b"  k=v  ",
          b'k="\xff\xfe" ms=3\r', b"time=nope ms=4", b"=x", b'k="a\\\\" ms=07']


def test_logfmt_equals_the_per_line_reference(loghub: Path) -> None:
    base = PRESETS["logfmt"]
    assert isinstance(base, LogfmtFormat)
    lines = _all_loghub(loghub)[::7] + LOGFMT * 3
    for fmt in (base, base.with_types({"ms": "int", "n": "float", "time": "iso_time"})):
        got = fmt.parse(lines)
        assert got == logfmt_per_line(fmt, lines)
        assert sum(isinstance(r, dict) for r in got) >= 3 * 5
    typed = base.with_types({"ms": "int", "n": "float"}).parse(LOGFMT)
    assert typed[0] == {"time": "2026-01-02T10:00:00Z", "level": "info", "msg": 'a "b" c',
                        "ms": 5, "n": None}
    assert typed[1] == ("wrong_type", "ms='x' is not a int (source.types)")
    assert typed[2] == ("wrong_type", "n='y' is not a float (source.types)")
    assert typed[3] == {"ms": 2, "n": None} and typed[4][0] == "parse_error"


_FIELD = st.text(st.sampled_from("0123456789.-ab ,:"), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_FIELD, _FIELD, st.sampled_from(["int", "float", "str"])),
                max_size=20))
def test_typed_columns_equal_the_reference_on_any_values(
        rows: list[tuple[str, str, str]]) -> None:
    for kind in ("int", "float", "str"):
        fmt = regex_format(r"(?P<a>[^|]*)\|(?P<b>[^|]*)\Z", {"a": kind, "b": "float"})
        lines = [f"{a}|{b}".encode() for a, b, _ in rows]
        assert fmt.parse(lines) == per_line(fmt, lines)


def test_a_batch_where_every_line_matches_keeps_its_wrong_types_in_place() -> None:
    from bench.logs import nginx_lines

    lines = nginx_lines(300)
    lines[7] = HOSTILE[3]  # matches, but its time is not a time
    fmt = PRESETS["nginx"]
    assert isinstance(fmt, TextFormat)
    got = fmt.parse(lines)
    assert got == per_line(fmt, lines)
    assert got[7] == ("wrong_type", "time_local='99/Foo/2026:10:00:00 +0000' is not a "
                      "clf_time (the nginx format's type for time_local)")
    assert sum(isinstance(r, dict) for r in got) == 299
