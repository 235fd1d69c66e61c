"""The text formats on real and hand-written lines: fields, types, times, rejections."""

from __future__ import annotations

import calendar
import re
from pathlib import Path

import pytest
from testkit.logs import read_log

from streamem.parsing import PRESETS, LineDecoder, regex_format
from streamem.parsing.formats import TextFormat

NGINX_FIELDS = ["remote_addr", "remote_user", "time_local", "request_method", "request_uri",
                "server_protocol", "status", "body_bytes_sent", "http_referer",
                "http_user_agent", "request_time", "upstream_response_time"]
NGINX = [
    b'203.0.113.7 - - [02/Jan/2026:10:00:00 +0000] "GET /index.html HTTP/1.1" 200 612 '
    b'"-" "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"',
    b'198.51.100.23 - alice [02/Jan/2026:11:30:05 +0100] "POST /api/v1/orders?id=7 HTTP/2.0" '
    b'502 157 "https://shop.example.com/cart" "curl/8.5.0" 0.512 0.500, 0.011',
    b'2001:db8::1 - - [02/Jan/2026:10:00:01 -0500] "GET /static/app.js HTTP/1.1" 304 0 '
    b'"https://shop.example.com/" "Mozilla/5.0 \\x22quoted\\x22" 0.000 -',
    b'192.0.2.1 - - [02/Jan/2026:10:00:02 +0000] "\\x16\\x03\\x01\\x00\\xA5\\x01" 400 157 '
    b'"-" "-" 0.001 -',
    b'192.0.2.9 - - [02/Jan/2026:10:00:03 +0000] "-" 499 0 "-" "-"',
]


def test_nginx_combined_fields_are_the_variables_of_nginx() -> None:
    recs = PRESETS["nginx"].parse(NGINX)
    assert all(isinstance(r, dict) for r in recs), recs
    assert [list(r) for r in recs] == [NGINX_FIELDS] * len(NGINX)  # type: ignore[arg-type]
    a, b, c, d, e = recs
    assert isinstance(a, dict) and isinstance(b, dict) and isinstance(c, dict)
    assert isinstance(d, dict) and isinstance(e, dict)
    assert a["remote_addr"] == "203.0.113.7" and a["remote_user"] == "-"
    assert (a["request_method"], a["request_uri"], a["server_protocol"]) == (
        "GET", "/index.html", "HTTP/1.1")
    assert (a["status"], a["body_bytes_sent"], a["http_referer"]) == (200, 612, "-")
    assert a["http_user_agent"].startswith("Mozilla/5.0 (X11")
    assert a["request_time"] is None and a["upstream_response_time"] is None
    # request and upstream times; two upstreams add up
    assert b["remote_user"] == "alice" and b["status"] == 502
    assert b["request_time"] == 0.512 and b["upstream_response_time"] == pytest.approx(0.511)
    assert c["remote_addr"] == "2001:db8::1" and c["upstream_response_time"] is None
    assert c["http_user_agent"] == "Mozilla/5.0 \\x22quoted\\x22"
    # a TLS handshake on the plain port, and a request nginx logs as "-"
    assert d["status"] == 400 and d["request_method"] is None and d["request_uri"] is None
    assert e["status"] == 499 and e["request_method"] is None


def test_nginx_time_local_is_epoch_seconds_with_its_zone() -> None:
    recs = PRESETS["nginx"].parse(NGINX[:3])
    base = calendar.timegm((2026, 1, 2, 10, 0, 0))
    assert [r["time_local"] for r in recs] == [  # type: ignore[index]
        base, base + 90 * 60 + 5 - 3600, base + 1 + 5 * 3600]
    assert PRESETS["nginx"].timestamp == "time_local"


def test_apache_common_and_combined() -> None:
    lines = [
        b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
        b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
        b'"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"',
        b'10.0.0.5 - - [10/Oct/2000:13:55:37 -0700] "GET /q?x=\\"y\\" HTTP/1.1" 304 -',
    ]
    common, combined, escaped = PRESETS["apache"].parse(lines)
    assert isinstance(common, dict) and isinstance(combined, dict) and isinstance(escaped, dict)
    assert common == {
        "remote_host": "127.0.0.1", "remote_logname": "-", "remote_user": "frank",
        "time": 971211336.0, "request_method": "GET", "request_uri": "/apache_pb.gif",
        "protocol": "HTTP/1.0", "status": 200, "bytes_sent": 2326, "referer": None,
        "user_agent": None}
    assert combined["referer"] == "http://www.example.com/start.html"
    assert combined["user_agent"] == "Mozilla/4.08 [en] (Win98; I ;Nav)"
    assert escaped["request_uri"] == '/q?x=\\"y\\"' and escaped["bytes_sent"] is None


def test_apache_error_log_reads_every_line_of_loghub_apache(loghub: Path) -> None:
    lines = read_log(loghub, "Apache")
    recs = PRESETS["apache_error"].parse(lines)
    assert len(recs) == 2000 and all(isinstance(r, dict) for r in recs)
    levels = {r["level"] for r in recs}  # type: ignore[index]
    assert levels == {"notice", "error"}
    first = recs[0]
    assert first == {"time": calendar.timegm((2005, 12, 4, 4, 47, 44)), "module": None,
                     "level": "notice", "pid": None, "tid": None, "client": None,
                     "message": "workerEnv.init() ok /etc/httpd/conf/workers2.properties"}
    times = [r["time"] for r in recs]  # type: ignore[index]
    assert calendar.timegm((2005, 12, 4, 0, 0, 0)) <= min(times) < max(times) < calendar.timegm(
        (2006, 1, 1, 0, 0, 0))


def test_apache_error_log_24_layout() -> None:
    line = (b"[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] "
            b"[client 72.15.99.187:50000] AH00128: File does not exist: /usr/htdocs/favicon.ico")
    (rec,) = PRESETS["apache_error"].parse([line])
    assert rec == {"time": 1315564949.902022, "module": "core", "level": "error", "pid": 35708,
                   "tid": 4328636416, "client": "72.15.99.187:50000",
                   "message": "AH00128: File does not exist: /usr/htdocs/favicon.ico"}


@pytest.mark.parametrize(("system", "n_ok", "apps"), [
    ("OpenSSH", 2000, {"sshd"}),
    ("Linux", 1999, {"ftpd", "sshd(pam_unix)", "su(pam_unix)", "kernel"}),
    ("Mac", 2000, {"kernel", "com.apple.cts", "corecaptured", "QQ"}),
])
def test_syslog_reads_the_loghub_bsd_syslog_samples(loghub: Path, system: str, n_ok: int,
                                                    apps: set[str]) -> None:
    lines = read_log(loghub, system)
    recs = PRESETS["syslog"].parse(lines)
    good = [r for r in recs if isinstance(r, dict)]
    assert len(recs) == 2000 and len(good) == n_ok
    assert apps <= {r["app_name"] for r in good}
    for r in good:
        assert isinstance(r["timestamp"], float) and r["message"] is not None
        assert r["procid"] is None or r["procid"].isdigit()
    if system == "OpenSSH":
        assert good[1]["message"] == "Invalid user webmaster from 173.234.31.186"
        assert (good[1]["hostname"], good[1]["procid"]) == ("LabSZ", "24200")


def test_syslog_dead_letters_the_malformed_linux_line_with_the_format(loghub: Path) -> None:
    lines = read_log(loghub, "Linux")
    recs = PRESETS["syslog"].parse(lines)
    bad = [(ln, r) for ln, r in zip(lines, recs, strict=True) if not isinstance(r, dict)]
    assert bad == [(b"Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2",
                    ("parse_error", "the line does not match the syslog format"))]


def test_syslog_rfc5424_examples() -> None:
    lines = [  # RFC 5424 section 6.5
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
        b"\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
        b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
        b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
        b"An application event log entry...",
        b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
        b'[exampleSDID@32473 iut="3"][examplePriority@32473 class="high"]',
        b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        b"2026-01-02T10:00:00.250+01:00 web-1 nginx[812]: worker process 815 exited",
    ]
    a, b, c, d, e = PRESETS["syslog"].parse(lines)
    assert e == {"pri": None, "timestamp": calendar.timegm((2026, 1, 2, 9, 0, 0)) + 0.25,
                 "hostname": "web-1", "app_name": "nginx", "procid": "812",
                 "message": "worker process 815 exited", "facility": None,
                 "severity": None}  # rsyslog's high-precision format
    t = calendar.timegm((2003, 10, 11, 22, 14, 15)) + 0.003
    assert isinstance(a, dict) and isinstance(b, dict)
    assert isinstance(c, dict) and isinstance(d, dict)
    assert a == {"pri": 34, "version": 1, "timestamp": pytest.approx(t),
                 "hostname": "mymachine.example.com", "app_name": "su", "procid": "-",
                 "msgid": "ID47", "structured_data": "-",
                 "message": "'su root' failed for lonvick on /dev/pts/8",
                 "facility": 4, "severity": 2}  # auth, critical
    assert b["structured_data"].startswith("[exampleSDID@32473 iut=")
    assert b["message"] == "An application event log entry..."
    assert c["structured_data"].endswith('class="high"]') and c["message"] is None
    assert (d["pri"], d["hostname"], d["app_name"], d["procid"]) == (34, "mymachine", "su", None)
    assert (b["facility"], b["severity"]) == (20, 5)  # local4, notice


def test_logfmt_pairs_quotes_and_types() -> None:
    fmt = PRESETS["logfmt"].with_types({"duration_ms": "float", "status": "int"})
    recs = fmt.parse([
        b'time=2026-01-02T10:00:00Z level=info msg="request done" status=200 duration_ms=12.5',
        b'level=warn msg="say \\"hi\\"" empty= path=/a=b',
        b"just some words",
        b'level=info msg="unterminated',
    ])
    assert recs[0] == {"time": "2026-01-02T10:00:00Z", "level": "info", "msg": "request done",
                       "status": 200, "duration_ms": 12.5}
    assert recs[1] == {"level": "warn", "msg": 'say "hi"', "empty": "", "path": "/a=b"}
    assert recs[2] == recs[3] == ("parse_error", "the line does not match the logfmt format")


def test_regex_format_named_groups_and_declared_types() -> None:
    fmt = regex_format(r"(?P<ts>\S+) (?P<level>[A-Z]+) took=(?P<ms>\S+) (?P<message>.*)",
                       {"ms": "float", "ts": "iso_time"})
    recs = fmt.parse([b"2026-01-02T10:00:00Z INFO took=1.5 ok", b"2026-01-02T10:00:01Z WARN "
                      b"took=fast slow", b"2026-01-02T10:00:02Z INFO took=- no time", b"nope"])
    assert recs[0] == {"ts": 1767348000.0, "level": "INFO", "ms": 1.5, "message": "ok"}
    assert recs[1] == ("wrong_type", "ms='fast' is not a float (the regex format's type for ms)")
    assert recs[2] == {"ts": 1767348002.0, "level": "INFO", "ms": None, "message": "no time"}
    assert recs[3] == ("parse_error", "the line does not match source.pattern")


def test_crlf_non_utf8_and_control_characters() -> None:
    line = (b'192.0.2.1 - - [02/Jan/2026:10:00:00 +0000] "GET /caf\xc3\xa9 HTTP/1.1" 200 5 "-" '
            b'"agent \xff\x01\x1b[31m"')
    a, b = PRESETS["nginx"].parse([line + b"\r", line])
    assert a == b and isinstance(a, dict)
    assert a["request_uri"] == "/café"
    assert a["http_user_agent"] == "agent \\xff\x01\x1b[31m"  # the bad byte as nginx writes it


def test_hostile_lines_fail_cleanly() -> None:
    big = b"a" * 1_048_576
    spaces = b'" ' * 300_000 + b'"'
    nul = b"\x00" * 1000
    for name, fmt in PRESETS.items():
        recs = fmt.parse([big, spaces, nul, b""])
        assert all(r[0] == "parse_error" and name in r[1] for r in recs), (name, recs)  # type: ignore[index]
    # a line beyond max_event_bytes is never matched
    dec = LineDecoder(PRESETS["nginx"], max_event_bytes=1000)
    assert dec([NGINX[0], big]) == [PRESETS["nginx"].parse([NGINX[0]])[0],
                                    ("too_large", "1048576 bytes > max_event_bytes=1000")]


def test_presets_have_one_compiled_regex_each_but_syslog_two() -> None:
    for name, fmt in PRESETS.items():
        if isinstance(fmt, TextFormat):
            assert len(fmt.regexes) == (2 if name == "syslog" else 1)
            assert all(isinstance(rx, re.Pattern) for rx in fmt.regexes)
            assert fmt.timestamp in fmt.fields


def test_every_preset_on_every_loghub_sample_matches_only_its_own_kind(loghub: Path) -> None:
    readers = {"Apache": {"apache_error"}, "Linux": {"syslog"}, "Mac": {"syslog"},
               "OpenSSH": {"syslog"}}
    systems = sorted(p.name for p in loghub.iterdir() if (p / f"{p.name}_2k.log").is_file())
    assert len(systems) == 14
    for system in systems:
        lines = read_log(loghub, system)
        for name in ("nginx", "apache", "apache_error", "syslog"):
            recs = PRESETS[name].parse(lines)
            n_ok = sum(isinstance(r, dict) for r in recs)
            rejected = {r for r in recs if not isinstance(r, dict)}
            assert rejected <= {("parse_error", f"the line does not match the {name} format")}
            if name in readers.get(system, set()):
                assert n_ok >= 1999, (system, name, n_ok)
            else:
                assert n_ok == 0, (system, name, n_ok)
