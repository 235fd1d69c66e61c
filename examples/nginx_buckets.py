"""nginx access log -> 10-second buckets -> Detector -> one anomaly record per flagged bucket.

The library path of the ``aggregate:`` section (docs/logs.md), on the 40-minute synthetic log
of the benchmark (a 5xx burst at minute 20, silence at minute 30). Run from the repository:
``python examples/nginx_buckets.py``.
"""

from __future__ import annotations

import json

import yaml

from bench.logs_buckets import access_log
from streamem import Detector
from streamem.aggregate import Buckets
from streamem.config.aggregate import aggregator, parse_aggregate
from streamem.parsing import PRESETS

SECTION = """
aggregate:
  bucket_span: 10s
  allowed_lateness: 5s
  emit_empty: true
  features:
    - {name: requests,   fn: count}
    - {name: errors_5xx, fn: count, where: "status >= 500"}
    - {name: p95_s,      fn: quantile, field: request_time, q: 0.95}
    - {name: clients,    fn: distinct_count, field: remote_addr}
    - {name: bytes,      fn: sum, field: body_bytes_sent}
"""


def main() -> None:
    lines = access_log()
    fmt = PRESETS["nginx"]
    agg = aggregator(parse_aggregate(yaml.safe_load(SECTION)["aggregate"]))
    det = Detector(warmup=100, random_state=0)  # 100 buckets (17 min) before the mixture
    for i in range(0, len(lines), 512):  # micro-batches, as the daemon reads them
        batch = lines[i:i + 512]
        recs = fmt.parse(batch)
        ok = [j for j, r in enumerate(recs) if isinstance(r, dict)]
        closed, rejected = agg.add([recs[j] for j in ok], [recs[j]["time_local"] for j in ok],
                                   [batch[j] for j in ok])
        assert not rejected
        report(det, closed)
    report(det, agg.flush())


def report(det: Detector, b: Buckets) -> None:
    if not len(b):
        return
    res = det.process(b.X)
    for i in [int(k) for k in res.is_anomaly.nonzero()[0]]:
        top = det.explain(b.X[i], top=2)
        print(json.dumps({
            "type": "anomaly", "severity": round(float(res.severity[i]), 1),
            **b.evidence(i),
            "top_features": [{"name": b.columns[c.index], "value": round(c.value, 3),
                              "expected": round(c.expected, 3), "z": round(c.z, 1)}
                             for c in top]}))


if __name__ == "__main__":
    main()
