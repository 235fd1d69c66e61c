"""Regenerate examples/sensors.jsonl: a seeded pump-sensor stream with injected anomalies.

Run: python examples/make_sample.py > examples/sensors.jsonl
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(n: int = 3000, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    t0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    out = sys.stdout
    for i in range(n):
        sensor = f"pump-{i % 3 + 1}"
        mode = (i // 500) % 2  # two operating modes
        flow = rng.normal(40.0 + 20.0 * mode, 2.0)
        pressure = 1.5 + 0.04 * flow + rng.normal(0, 0.05)
        temperature = 55.0 + 0.3 * flow + rng.normal(0, 0.8)
        rms = abs(rng.normal(0.8 + 0.01 * flow, 0.05))
        anomaly = 0
        if i in (1800, 2200, 2600):  # pressure breaks its correlation with flow
            pressure += 1.2
            anomaly = 1
        if 2400 <= i < 2406:  # bearing fault: vibration burst
            rms += 1.5
            anomaly = 1
        event = {
            "ts": t0 + i, "sensor": sensor, "temperature": round(temperature, 3),
            "pressure": round(pressure, 4), "flow": round(flow, 3),
            "vibration": {"rms": round(rms, 4)}, "label": anomaly,
        }
        if i % 997 == 0 and i:
            event["temperature"] = None  # a dropped reading: handled as missing
        out.write(json.dumps(event) + "\n")
        if i == 1500:
            out.write('{"ts": 1767227100, "sensor": "pump-1", "temperature": "hot"}\n')
            out.write('{"ts": 1767227100, "sensor": "pump-2", "temper\n')


if __name__ == "__main__":
    main()
