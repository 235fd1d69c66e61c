"""The log formatters and filters: one line per record, URLs redacted, secrets masked only as
whole words of a useful length."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from streamem.logs import redact_url, setup_logging


class _Err:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def getvalue(self) -> str:
        return self._capsys.readouterr().err


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[_Err]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield _Err(capsys)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name in ("httpx", "httpcore", "kafka", "urllib3"):
        logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_traceback_cannot_forge_lines_or_leak_a_url(stderr: _Err, fmt: str) -> None:
    setup_logging("DEBUG", fmt)
    try:
        raise ValueError("bad id x\r\n2026-01-01 00:00:00,000 ERROR streamem: FORGED "
                         "posting to https://h/hook/Zq9vXw2LmN4oPq7RsT1uVw3x?token=t0k")
    except ValueError:
        logging.getLogger("streamem.test").exception("failed\n%s", "FORGED too")
    out = stderr.getvalue()
    assert "Zq9vXw2LmN4oPq7RsT1uVw3x" not in out and "t0k" not in out
    lines = out.splitlines()
    if fmt == "json":
        assert len(lines) == 1 and "FORGED" in json.loads(lines[0])["exc"]
    else:
        assert lines[0].endswith("failed\\nFORGED too")
        assert all(line.startswith("    ") for line in lines[1:]), lines


def test_third_party_records_are_quieted_and_redacted(stderr: _Err) -> None:
    setup_logging("DEBUG", "text", secrets=["k", "a-long-secret-value"])
    logging.getLogger("httpx").info("HTTP Request: POST https://h/x/Zq9vXw2LmN4oPq7RsT1uVw3x")
    logging.getLogger("kafka.conn").warning("auth with a-long-secret-value to http://u:p@b:1/")
    logging.getLogger("streamem.daemon").info("no checkpoint yet, k=1")
    out = stderr.getvalue()
    assert "HTTP Request" not in out  # httpx is held at WARNING, even at DEBUG
    assert "auth with *** to http://***@b:1/" in out
    assert "no checkpoint yet, k=1" in out  # a short secret never garbles our own lines


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.slack.com/services/T0AB12CD/B0XY98ZW/Zq9vXw2LmN4oPq7RsT1uVw3x",
     "https://hooks.slack.com/services/***/***/***"),
    ("http://127.0.0.1:9093/api/v2/alerts", "http://127.0.0.1:9093/api/v2/alerts"),
    ("https://u:p@h/hook?token=abc&flag", "https://***@h/hook?token=***&flag"),
    ("https://h/api/webhooks/123456789012345678/abc", "https://h/api/webhooks/***/abc"),
    ("http://[::1]:8080/x#frag", "http://[::1]:8080/x#***"),
    ("http://h:99999/", "<unparsable url>"),
])
def test_the_url_rule(url: str, shown: str) -> None:
    assert redact_url(url) == shown
