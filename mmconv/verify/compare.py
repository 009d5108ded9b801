"""Output comparison with the project's one tolerance rule.

float32 default: ``max|a-b| <= 1e-4 * max(1, max|ref|)``; with an absolute
tolerance ``atol`` (``mmverify --atol``) the bound is ``atol + rtol * max(1,
max|ref|)``.  The report carries
the numbers a user needs to judge a mismatch (max abs/rel error, the
tolerance that would have passed, top-1 agreement), after Polygraphy's
OutputCompareResult.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Relative tolerance per dtype, scaled by max(1, max|ref|).
DEFAULT_RTOL = {"float32": 1e-4, "float64": 1e-9, "float16": 1e-2}


@dataclass(frozen=True)
class OutputComparison:
    """How one output of the converted model compares with the reference."""

    name: str
    max_abs: float
    max_rel: float
    tolerance: float
    #: the smallest relative factor (in the rule above) that would have passed
    needed_rtol: float
    top1_agreement: float | None
    shape_ok: bool

    @property
    def passed(self) -> bool:
        return self.shape_ok and self.max_abs <= self.tolerance

    def __str__(self) -> str:
        top1 = "" if self.top1_agreement is None else f", top-1 agree {self.top1_agreement:.1%}"
        verdict = "ok" if self.passed else "MISMATCH"
        return (
            f"{self.name}: {verdict} max|a-b|={self.max_abs:.3g} (tolerance {self.tolerance:.3g}, "
            f"max rel {self.max_rel:.3g}, passes at rtol>={self.needed_rtol:.3g}{top1})"
        )


def compare(name: str, ref: np.ndarray, got: np.ndarray, rtol: float | None = None,
            atol: float = 0.0) -> OutputComparison:
    """Compare one output; ``rtol`` defaults by the reference's dtype, ``atol`` to 0."""
    ref = np.asarray(ref)
    got = np.asarray(got)
    if rtol is None:
        rtol = DEFAULT_RTOL.get(ref.dtype.name, 1e-4)
    if ref.shape != got.shape:
        if ref.size == got.size:
            got = got.reshape(ref.shape)
            shape_ok = True
        else:
            return OutputComparison(name, float("inf"), float("inf"), 0.0, float("inf"), None,
                                    False)
    else:
        shape_ok = True
    r = ref.astype(np.float64)
    g = got.astype(np.float64)
    # Positions where both sides agree on a non-finite value (log of a negative, an
    # overflow) match; a non-finite value on one side only is an infinite error.
    same_special = (np.isnan(r) & np.isnan(g)) | (np.isinf(r) & (r == g))
    finite_ref = r[np.isfinite(r)]
    scale = max(1.0, float(np.max(np.abs(finite_ref)))) if finite_ref.size else 1.0
    with np.errstate(invalid="ignore"):
        diff = np.where(same_special, 0.0, np.abs(r - g))
    diff = np.where(np.isnan(diff), np.inf, diff)
    max_abs = float(np.max(diff)) if diff.size else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.maximum(np.abs(np.nan_to_num(r)), 1e-12))
    max_rel = float(np.max(rel)) if diff.size else 0.0
    top1 = None
    if r.ndim >= 2 and r.shape[-1] > 1:
        top1 = float(np.mean(np.argmax(r, axis=-1) == np.argmax(g, axis=-1)))
    return OutputComparison(name, max_abs, max_rel, atol + rtol * scale,
                            max(0.0, max_abs - atol) / scale, top1, shape_ok)


def assert_close(ref: np.ndarray, got: np.ndarray, rtol: float | None = None,
                 name: str = "output") -> OutputComparison:
    """Raise AssertionError with the full report if ``got`` is not within tolerance."""
    result = compare(name, ref, got, rtol)
    if not result.passed:
        raise AssertionError(str(result))
    return result
