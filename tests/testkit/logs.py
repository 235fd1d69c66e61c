"""Test kit of the text-log tests: the real Loghub 2k samples (../shared/data/loghub)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CANDIDATES = [Path(p) for p in [os.environ.get("STREAMEM_LOGHUB", "")] if p] + [
    ROOT.parent / "shared" / "data" / "loghub",  # a clone beside shared/
    ROOT.parent.parent / "shared" / "data" / "loghub",  # a worktree one level further down
]


def loghub_dir() -> Path:
    """The Loghub folder; missing data fails the test (set STREAMEM_LOGHUB to point at it)."""
    for p in _CANDIDATES:
        if (p / "OpenSSH" / "OpenSSH_2k.log").is_file():
            return p
    pytest.fail(f"Loghub 2k samples not found at {[str(p) for p in _CANDIDATES]}; "
                "set STREAMEM_LOGHUB")


def read_log(loghub: Path, system: str) -> list[bytes]:
    """The lines of a Loghub sample, as the file source delivers them (no CR, no LF)."""
    data = (loghub / system / f"{system}_2k.log").read_bytes()
    return [ln.rstrip(b"\r") for ln in data.split(b"\n") if ln.strip()]


def nginx_access_log(n: int, slow: tuple[int, ...] = (), seed: int = 0) -> list[bytes]:
    """``n`` realistic nginx combined lines, one per 0.1 s from 2026-01-02 10:00:00 UTC,
    with ``$request_time $upstream_response_time``; the lines at the indices in ``slow``
    take 9 s and send 900 kB (an anomaly in both features)."""
    import random
    import time

    rng = random.Random(seed)
    agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36", "curl/8.5.0", "Go-http-client/1.1"]
    out = []
    for i in range(n):
        t = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(1_767_348_000 + i // 10))
        rt = 9.0 if i in slow else max(rng.gauss(0.05, 0.01), 0.001)
        size = 900_000 if i in slow else int(rng.gauss(5000, 400))
        out.append(f'10.0.{rng.randrange(256)}.{rng.randrange(1, 255)} - - [{t}] "GET '
                   f'/api/v1/items/{rng.randrange(5000)} HTTP/1.1" 200 {size} '
                   f'"https://shop.example.com/" "{rng.choice(agents)}" {rt:.3f} '
                   f'{rt * 0.9:.3f}'.encode())
    return out
