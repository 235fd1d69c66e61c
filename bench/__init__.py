"""streamem benchmarks: ``python -m bench`` runs them all and rewrites docs/benchmarks.md.

Every benchmark runs on one core: when started with ``python -m bench...`` the BLAS thread
pools are limited to one thread here, before numpy is imported anywhere, and again with
threadpoolctl at run time. Imported any other way (e.g. by a test), this module changes
nothing.
"""

from __future__ import annotations

import os
import sys

if sys.argv and sys.argv[0] == "-m":  # only while runpy is starting a bench module
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
