"""``streamem feedback``: send a verdict to a running daemon's ``POST /api/v1/feedback``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from streamem.errors import StreamemError

__all__ = ["send_feedback"]


def send_feedback(base_url: str, token: str, anomaly_id: str, verdict: str,
                  note: str = "", *, timeout: float = 10.0) -> dict[str, Any]:
    """POST one verdict; return the stored entry.

    Parameters
    ----------
    base_url
        The daemon's metrics address, e.g. ``http://127.0.0.1:9108``.
    token
        The ``ui.token`` of that daemon.
    anomaly_id
        The ``id`` of a recent anomaly record.
    verdict
        ``false_positive`` or ``true_positive``.
    note
        Free text kept with the verdict.
    timeout
        Seconds to wait for the daemon.

    Raises
    ------
    StreamemError
        The daemon refused the verdict (its reason is in the message) or cannot be reached.
    """
    body = json.dumps({"id": anomaly_id, "verdict": verdict, "note": note}).encode()
    req = urllib.request.Request(
        f"{base_url.rstrip('/')}/api/v1/feedback", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
            return doc
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            reason = exc.reason
        raise StreamemError(f"the daemon refused the verdict ({exc.code}): {reason}") from None
    except (OSError, ValueError) as exc:
        raise StreamemError(f"cannot reach {base_url} ({exc}); is the daemon running with "
                            "metrics and ui enabled? give its address with --url") from None
