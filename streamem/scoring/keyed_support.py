"""Small parts of :class:`~streamem.scoring.keyed.KeyedDetector`: key validation, the
population fit and update, the tail threshold, severity, and the counters it reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError
from streamem.model._keyed import Population
from streamem.scoring.key_table import COUNT_EVENTS
from streamem.scoring.severity import KNOTS

if TYPE_CHECKING:
    from streamem.scoring.key_table import KeyTable

__all__ = ["MAX_KEY_CHARS", "KeyedCounters", "check_keyed_params", "check_keys",
           "fit_population", "key_severity", "population_params", "tail_threshold",
           "validate_batch"]

Array = NDArray[np.float64]
#: Longest key accepted, in characters.
MAX_KEY_CHARS = 1024
_KX = np.array([k[0] for k in KNOTS])
_KY = np.array([k[1] for k in KNOTS])


def check_keys(keys: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.str_]]:
    """Which keys are usable, and why the others are not (vectorised over code points).

    A key is bad when it is empty, longer than 1024 characters, or holds a control
    character; the daemon dead-letters such rows with the reason.

    Parameters
    ----------
    keys
        Shape (n_samples,), str (ints are always fine).

    Returns
    -------
    ok
        Shape (n_samples,), bool.
    reason
        Shape (n_samples,): ``""`` for good keys.

    Examples
    --------
    >>> ok, why = check_keys(["pump-7", "", "a\\nb", "x" * 2000])
    >>> ok.tolist()
    [True, False, False, False]
    >>> why[1:].tolist()
    ['empty', 'holding a control character', 'longer than 1024 characters']
    """
    arr = np.asarray(keys)
    n = len(arr)
    if arr.dtype.kind in "iub":
        return np.ones(n, dtype=bool), np.full(n, "", dtype=np.str_)
    arr = arr.astype(np.str_)
    width = arr.dtype.itemsize // 4
    cp = arr.view(np.uint32).reshape(n, max(width, 1)) if width else np.zeros((n, 1), np.uint32)
    length = np.count_nonzero(cp, axis=1)
    control = ((cp < 32) & (cp > 0)) | ((cp >= 127) & (cp < 160))
    bad_ctl = control.any(axis=1)
    reason = np.full(n, "", dtype="<U32")
    reason[length > MAX_KEY_CHARS] = f"longer than {MAX_KEY_CHARS} characters"
    reason[bad_ctl] = "holding a control character"
    reason[length == 0] = "empty"
    return reason == "", reason


def fit_population(Z: Array, n_components: int, random_state: int | None
                   ) -> tuple[Array, Array, Array]:
    """Population sufficient statistics ``(N, S1, S2)`` from a batch-EM fit of pooled
    standardised rows ``Z`` (n_samples, d)."""
    from streamem.model.gmm import OnlineGMM

    gmm = OnlineGMM(n_components=n_components, covariance_type="full", n_warmup=len(Z),
                    random_state=random_state)
    gmm.partial_fit(Z)
    N = gmm.weights_ * len(Z)
    mu = gmm.means_
    S1 = N[:, None] * mu
    S2 = N[:, None, None] * (gmm.covariances_ + mu[:, :, None] * mu[:, None, :])
    return N, S1, S2


def population_params(N: Array, S1: Array, S2: Array) -> Population:
    """The population mixture from its (decayed) statistics; weights floored at 1e-3.

    Examples
    --------
    >>> p = population_params(np.array([3.0, 1.0]), np.zeros((2, 1)), np.ones((2, 1, 1)))
    >>> p.weights.tolist(), p.covariances.ravel().round(3).tolist()
    ([0.75, 0.25], [0.334, 1.001])
    """
    Nf = np.maximum(N, 1e-3 * N.sum() + 1e-12)
    mu = S1 / Nf[:, None]
    d = S1.shape[1]
    cov = S2 / Nf[:, None, None] - mu[:, :, None] * mu[:, None, :] + 1e-3 * np.eye(d)
    return Population(Nf / Nf.sum(), mu, cov)


def tail_threshold(E: Any, P: Any, X: Any, q: float) -> Any:
    """Surprise threshold from an exponential tail above ``u0 = -log10(q) / 2``: ``E``
    events, ``P`` of them above ``u0``, ``X`` their summed excess.

    Examples
    --------
    >>> q = 1e-3; u0 = 1.5                      # a calibrated tail: P/E = 10**-u0
    >>> E = 1e6; P = E * 10**-u0; X = P / np.log(10)
    >>> round(float(tail_threshold(E, P, X, q)), 6)
    3.0
    """
    u0 = -np.log10(q) / 2
    r = np.asarray(P) / np.maximum(E, 1.0)
    b = np.asarray(X) / np.maximum(P, 1e-12)
    return u0 + b * np.log(np.maximum(r / q, 1.0))


def key_severity(u: Array, threshold: Array) -> Array:
    """0-100 per row against the row's own threshold (75 at it), as :func:`severity`.

    Examples
    --------
    >>> key_severity(np.array([3.0, 2.0]), np.array([3.0, 4.0])).tolist()
    [75.0, 25.0]
    """
    return np.asarray(np.interp(u / np.maximum(threshold, 1e-12), _KX, _KY))


class KeyedCounters:
    """Read-only counters of a keyed detector (for gauges: no per-key labels)."""

    table_: KeyTable | None
    key_prior_events: float

    @property
    def n_keys_in_memory(self) -> int:
        """Keys held in memory now."""
        return 0 if self.table_ is None else self.table_.n_keys

    @property
    def n_keys_warming(self) -> int:
        """In-memory keys with fewer than ``key_prior_events`` events of their own."""
        t = self.table_
        if t is None or not t.n_keys:
            return 0
        col = t.layout.spans["counts"][0] + COUNT_EVENTS
        return int(np.count_nonzero(t.rec[t.sorted_slots, col] < self.key_prior_events))

    def counters(self) -> dict[str, int]:
        """Keys in memory, warming, created, evicted, loaded back, forgotten (idle), and
        evicted keys waiting for the next checkpoint.

        Examples
        --------
        >>> from streamem.scoring.keyed import KeyedDetector
        >>> KeyedDetector().counters()["keys_in_memory"]
        0
        """
        t = self.table_
        return {
            "keys_in_memory": self.n_keys_in_memory,
            "keys_warming": self.n_keys_warming,
            "keys_created": 0 if t is None else t.created,
            "keys_evicted": 0 if t is None else t.evictions,
            "keys_loaded": 0 if t is None else t.loads,
            "keys_forgotten": 0 if t is None else t.forgotten,
            "keys_spilled": 0 if t is None else len(t.spill),
        }


def validate_batch(X: ArrayLike, keys: ArrayLike, learn: ArrayLike | None, now: ArrayLike | None,
                   n_features: int | None, n_events: int
                   ) -> tuple[Array, NDArray[Any], NDArray[np.bool_], Array]:
    """A batch of ``KeyedDetector.process`` checked: rows, keys, ``learn`` and the clock.

    Raises
    ------
    InvalidInputError
        What is wrong, with the row and the fix.

    Examples
    --------
    >>> A, k, allow, clock = validate_batch([[1.0, 2.0]], ["a"], None, None, None, 5)
    >>> k.tolist(), clock.tolist()
    (['a'], [5.0])
    """
    A = np.asarray(X, dtype=float)
    A = A.reshape(1, -1) if A.ndim == 1 else A  # one event
    if A.ndim != 2 or (n_features is not None and A.shape[1] != n_features):
        raise InvalidInputError(f"X has shape {A.shape}; pass (n_samples, "
                                f"{n_features or 'n_features'}) rows")
    n = A.shape[0]
    missing = np.isnan(A)
    bad_row = np.flatnonzero(np.isinf(A).any(axis=1) | (missing.all(axis=1) & (A.shape[1] > 0)))
    if len(bad_row):
        raise InvalidInputError(f"row {int(bad_row[0])} is infinite or has every feature "
                                "missing; drop it or mark only the missing readings NaN")
    K_arr = np.asarray(keys)
    if K_arr.shape != (n,):
        raise InvalidInputError(f"keys has shape {K_arr.shape} for {n} rows; give one key "
                                "per row")
    if K_arr.dtype.kind in "iub":
        K_arr = K_arr.astype(np.int64)
    else:
        K_arr = K_arr.astype(np.str_)
        ok, why = check_keys(K_arr)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise InvalidInputError(f"key of row {i} is {why[i]}; dead-letter the rows "
                                    "that check_keys() marks before process()")
    allow = np.ones(n, dtype=bool) if learn is None else np.asarray(learn, bool).reshape(-1)
    if len(allow) != n:
        raise InvalidInputError(f"learn has {len(allow)} entries for {n} events; give one "
                                "bool per row of X")
    clock = (n_events + np.arange(n, dtype=float) if now is None
             else np.broadcast_to(np.asarray(now, dtype=float), (n,)).copy())
    return A, K_arr, allow, clock


def check_keyed_params(p: dict[str, Any]) -> None:
    """Refuse out-of-range constructor arguments of a keyed detector, naming them."""
    for name in ("half_life", "alert_rate", "key_prior_events", "key_calibration_peaks"):
        if not float(p[name]) > 0:
            raise InvalidInputError(f"{name}={p[name]!r} must be > 0")
    if not 0 < p["alert_rate"] < 0.5:
        raise InvalidInputError(f"alert_rate={p['alert_rate']!r} must be in (0, 0.5)")
    for name in ("n_components", "warmup", "max_keys_in_memory"):
        if int(p[name]) < 1:
            raise InvalidInputError(f"{name}={p[name]!r} must be a positive integer")
