"""streamem benchmarks: ``python -m bench`` runs them all and rewrites docs/benchmarks.md.

Every benchmark runs on one core: the BLAS thread pools are limited to one thread here,
before numpy is imported anywhere, and again with threadpoolctl at run time.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
