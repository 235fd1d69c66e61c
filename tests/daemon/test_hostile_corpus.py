"""A corpus of hostile lines, each with the reason it must be rejected for: the decoder gives
that reason (alone and inside a batch of good lines), and a real ``streamem run`` over a file
that mixes them into a good stream exits 0, dead-letters every hostile line exactly once at its
own offset with its reason, learns the good lines, and ends in the model of the good lines
alone. Lines that merely look odd (non-ASCII keys, CR/LF in ids, deep but bounded nesting,
huge numbers in unused fields) must be learned, not rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testkit.daemon import FEATURES, cli, inspect, make_stream, read_jsonl, write_config

from streamem.features import REJECT_REASONS, FeatureExtractor

GOOD = b'{"temperature": 62.1, "pressure": 3.1, "flow": 40.2, "vibration": {"rms": 1.2}'


def _ev(extra: bytes) -> bytes:
    """A good event with ``extra`` spliced in after its features (``, "k": v`` text)."""
    return GOOD + extra + b"}"


def _nest(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE: list[tuple[bytes, str]] = [
    # poison pills: crashed the daemon (RecursionError, OverflowError, ValueError)
    (b'{"temperature": ' + _nest(1500) + b', "pressure": 3.1}', "parse_error"),
    (_ev(b', "junk": ' + _nest(1100)), "parse_error"),
    (b'{"temperature": ' + b"9" * 400 + b', "pressure": 3.1}', "invalid_value"),
    (b'{"temperature": -' + b"9" * 400 + b', "pressure": 3.1}', "invalid_value"),
    (b'{"temperature": ' + b"7" * 5000 + b', "pressure": 3.1}', "invalid_value"),
    (_ev(b', "junk": ' + b"7" * 5000), "invalid_value"),
    (b'{"temperature": 1e400, "pressure": 3.1}', "invalid_value"),
    # lists as values: equal-length lists once converted to an extra array axis
    (b'{"temperature": [], "pressure": [], "flow": [], "vibration": {"rms": []}}',
     "wrong_type"),
    (b'{"temperature": [1, 2], "pressure": [3, 4], "flow": [5, 6], "vibration": {"rms": [7, 8]}}',
     "wrong_type"),
    # batch-join smuggling: two records on one line, one record split over two lines
    (b'{"temperature": 61, "pressure": 3.0, "flow": 40},{"temperature": 62, "pressure": 3.1}',
     "parse_error"),
    (b'{"temperature": 63, "pressure": 3.2, "x": 1', "parse_error"),
    (b'"flow": 41}', "parse_error"),
    (b'{"temperature": 61, "c": [{}', "parse_error"),
    (b'{}]}', "parse_error"),
    (b'{"temperature": 61, "s": "}', "parse_error"),
    (b'{","pressure": 3.0}', "parse_error"),
    # timestamps: far future, non-finite, negative, wrong types, unparseable, out of range
    (_ev(b', "ts": 99000000000'), "bad_timestamp"),
    (_ev(b', "ts": 99000000000000000'), "bad_timestamp"),
    (_ev(b', "ts": "9999-12-31T23:59:59Z"'), "bad_timestamp"),
    (_ev(b', "ts": "3000-01-01 00:00:00"'), "bad_timestamp"),
    (_ev(b', "ts": "99000000000"'), "bad_timestamp"),
    (_ev(b', "ts": NaN'), "bad_timestamp"),
    (_ev(b', "ts": Infinity'), "bad_timestamp"),
    (_ev(b', "ts": 1e400'), "bad_timestamp"),
    (_ev(b', "ts": "nan"'), "bad_timestamp"),
    (_ev(b', "ts": "inf"'), "bad_timestamp"),
    (_ev(b', "ts": ' + b"9" * 400), "bad_timestamp"),
    (_ev(b', "ts": -5'), "bad_timestamp"),
    (_ev(b', "ts": "0001-01-01T00:00:00+14:00"'), "bad_timestamp"),
    (_ev(b', "ts": "2020-01-01T00:00:00+25:00"'), "bad_timestamp"),
    (_ev(b', "ts": "yesterday"'), "bad_timestamp"),
    (_ev(b', "ts": true'), "bad_timestamp"),
    (_ev(b', "ts": [1700000000]'), "bad_timestamp"),
    (_ev(b', "ts": {"s": 1700000000}'), "bad_timestamp"),
    # keys: empty, too long, control characters (C0, C1, DEL), lone surrogates, containers
    (_ev(b', "sensor": ""'), "invalid_key"),
    (_ev(b', "sensor": "' + b"k" * 1025 + b'"'), "invalid_key"),
    (_ev(b', "sensor": "' + "ü".encode() * 513 + b'"'), "invalid_key"),  # 1026 bytes
    (_ev(b', "sensor": "pump\\nFORGED log line"'), "invalid_key"),
    (_ev(b', "sensor": "pump\\r1"'), "invalid_key"),
    (_ev(b', "sensor": "pump\\u00001"'), "invalid_key"),
    (_ev(b', "sensor": "pump\\u001b[31m"'), "invalid_key"),
    (_ev(b', "sensor": "pump\\u007f"'), "invalid_key"),
    (_ev(b', "sensor": "pump\\u0085"'), "invalid_key"),
    (_ev(b', "sensor": "pump\\u009b"'), "invalid_key"),
    (_ev(b', "sensor": "pump\\ud800"'), "invalid_key"),
    (_ev(b', "sensor": {"a": 1}'), "invalid_key"),
    (_ev(b', "sensor": ["pump-1"]'), "invalid_key"),
    # ids: too long, lone surrogates, containers
    (_ev(b', "id": "' + b"i" * 1025 + b'"'), "invalid_id"),
    (_ev(b', "id": "ev\\udfff"'), "invalid_id"),
    (_ev(b', "id": {"a": 1}'), "invalid_id"),
    (_ev(b', "id": [1, 2]'), "invalid_id"),
]

# odd but valid: these must be learned like any good event
ODD_BUT_GOOD: list[bytes] = [
    _ev(b', "sensor": "Pumpe-\xc3\xbc \xe6\xb3\xb5"'),
    _ev(b', "sensor": "' + b"k" * 1024 + b'"'),
    _ev(b', "sensor": 17'),
    _ev(b', "id": "ev\\r\\nX-Forged: 1\\u0000"'),
    _ev(b', "id": "' + b"i" * 1024 + b'"'),
    _ev(b', "id": 12345678901234567890123'),
    _ev(b', "junk": ' + _nest(900)),
    _ev(b', "junk": ' + b"9" * 400),
    _ev(b', "ts": "2023-11-14T22:13:20Z"'),
    _ev(b', "ts": "2023-11-14T22:13:20.5+01:00"'),
    _ev(b', "ts": 1700000000000'),
    _ev(b', "ts": "1700000000"'),
    _ev(b', "ts": 0'),
    _ev(b', "ts": null'),
    _ev(b', "s": "}{][\\"\\\\"'),
]


def _fx() -> FeatureExtractor:
    return FeatureExtractor(FEATURES, timestamp="ts", key="sensor", id="id",
                            max_event_bytes=1 << 16)


def test_every_expected_reason_is_a_known_reason() -> None:
    assert {r for _, r in HOSTILE} <= set(REJECT_REASONS)


@pytest.mark.parametrize(("line", "reason"), HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def test_decoder_rejects_a_hostile_line_alone_and_inside_a_batch(line: bytes,
                                                                 reason: str) -> None:
    fx = _fx()
    alone = fx.decode([line])
    assert alone.kept == [] and [r.reason for r in alone.rejected] == [reason], alone.rejected
    batch = [GOOD + b"}"] * 3 + [line] + [GOOD + b"}"] * 3
    mixed = fx.decode(batch)
    assert mixed.kept == [0, 1, 2, 4, 5, 6]
    assert [(r.index, r.reason) for r in mixed.rejected] == [(3, reason)]
    assert mixed.X.shape == (6, len(FEATURES))
    assert "\n" not in mixed.rejected[0].detail and "\r" not in mixed.rejected[0].detail


def test_decoder_keeps_the_odd_but_valid_lines() -> None:
    fx = _fx()
    for line in ODD_BUT_GOOD:
        b = fx.decode([line])
        assert b.kept == [0], (line[:80], b.rejected)
    b = fx.decode(ODD_BUT_GOOD)
    assert b.kept == list(range(len(ODD_BUT_GOOD))), b.rejected
    assert b.id(3) == "ev\r\nX-Forged: 1\x00"  # the original id is kept; sinks encode it
    assert b.timestamp(8) == 1_700_000_000.0 and b.timestamp(10) == 1_700_000_000.0
    assert b.timestamp(9) == 1_700_000_000.5 - 3600 and b.timestamp(13) is None


def test_streamem_run_dead_letters_each_hostile_line_once_and_learns_the_rest(
        tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    make_stream(good, 1400)
    good_lines = good.read_bytes().splitlines()
    mixed = tmp_path / "mixed.jsonl"
    expect: dict[int, tuple[bytes, str]] = {}  # byte offset -> (line, reason)
    clean: list[bytes] = []
    offset = 0
    with mixed.open("wb") as fh:
        for i, line in enumerate(good_lines):
            lines = [line]
            if i % 100 == 50:
                k = i // 100
                lines += [HOSTILE[(k * 7 + j) % len(HOSTILE)][0] for j in range(7)]
                lines.append(ODD_BUT_GOOD[k % len(ODD_BUT_GOOD)])
            for ln in lines:
                reason = dict(HOSTILE).get(ln)
                if reason is None:
                    clean.append(ln)
                else:
                    expect[offset] = (ln, reason)
                fh.write(ln + b"\n")
                offset += len(ln) + 1
    (tmp_path / "clean.jsonl").write_bytes(b"".join(ln + b"\n" for ln in clean))
    assert {r for _, r in expect.values()} == {r for _, r in HOSTILE}  # each reason occurs
    opts = {"batch": {"max_events": 1}, "source": {"max_event_bytes": 1 << 16}}
    runs = {}
    for name, path in (("a", mixed), ("b", tmp_path / "clean.jsonl")):
        (tmp_path / name).mkdir()
        out = cli("run", "-c", str(write_config(tmp_path / name, path, **opts)), timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "Traceback" not in out.stderr
        runs[name] = inspect(tmp_path / name / "state")

    dead = read_jsonl(tmp_path / "a" / "dead.jsonl")
    got = {int(d["source_id"].rsplit(":", 1)[1]): d for d in dead}
    assert len(got) == len(dead) == len(expect)  # once each, nothing else
    for off, (line, reason) in expect.items():
        assert got[off]["reason"].split(":")[0] == reason, (line[:80], got[off]["reason"])
    assert not any(c in d["reason"] for d in dead for c in "\r\n\x00\x85")

    # the same file in batches of 256 (the fast path): the same dead letters, as many learned
    (tmp_path / "c").mkdir()
    out = cli("run", "-c", str(write_config(tmp_path / "c", mixed, **{
        **opts, "batch": {"max_events": 256}})), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    dead_c = read_jsonl(tmp_path / "c" / "dead.jsonl")
    assert [(d["source_id"], d["reason"]) for d in dead_c] == \
        [(d["source_id"], d["reason"]) for d in dead]
    c = inspect(tmp_path / "c" / "state")
    assert sum(c["counters"].get(f"events_{k}", 0) for k in ("learned", "anomalous",
                                                               "skipped")) == len(clean)

    a, b = runs["a"], runs["b"]
    assert a["counters"]["events_rejected"] == len(expect)
    assert a["counters"]["events_seen"] == len(expect) + len(clean)
    learned = sum(a["counters"].get(f"events_{k}", 0) for k in ("learned", "anomalous",
                                                                  "skipped"))
    assert learned == len(clean)
    assert json.dumps(a["model"], sort_keys=True) == json.dumps(b["model"], sort_keys=True)
    assert a["threshold"] == b["threshold"]


CSV_HOSTILE: list[tuple[bytes, str]] = [
    (b'1,"' + b"x" * 200_000 + b'",3', "parse_error"),  # beyond csv.field_size_limit: crashed
    (b"1,2\r3,4,5", "parse_error"),  # two records in one event: the second was dropped
    (b"1,2", "parse_error"),
    (b"1,2,3,4", "parse_error"),
    (b"\xff,2,3", "parse_error"),
    (b"nan,2,3", "invalid_value"),
    (b"1e999,2,3", "invalid_value"),
    (b"warm,2,3", "wrong_type"),
    (b",,", "no_features"),
    (b"1,,", "invalid_key"),
    (b"1,pump\x1b[2J,3", "invalid_key"),
    (b"1,pump,99000000000", "bad_timestamp"),
    (b"1,pump,soon", "bad_timestamp"),
]


def test_csv_rows_that_crashed_or_slipped_through_are_rejected() -> None:
    fx = FeatureExtractor(["a"], key="k", timestamp="t", format="csv", max_event_bytes=1 << 20)
    fx.set_csv_header(b"a,k,t")
    good = b"1.5,pump,1700000000"
    for line, reason in CSV_HOSTILE:
        b = fx.decode([good, line, good])
        assert b.kept == [0, 2] and [(r.index, r.reason) for r in b.rejected] == [(1, reason)], \
            (line[:40], b.rejected)
    assert fx.decode([b'2,"pump, east",5']).keys == ["pump, east"]


@pytest.mark.parametrize("header", [b"", b"   ", b"a,b\rc,d"])
def test_a_bad_csv_header_is_an_input_error_not_a_traceback(header: bytes) -> None:
    from streamem.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="header"):
        FeatureExtractor(["a"], format="csv").set_csv_header(header)
