"""CNTK conventions shared by the CNTK frontend and the CNTK emitter."""

from __future__ import annotations


def auto_pads(n: int, k: int, stride: int, dilation: int, ceil: bool = False
              ) -> tuple[int, int]:
    """The (begin, end) padding CNTK's ``auto_padding`` adds on one axis of size ``n``.

    CNTK centres the output windows (ConvolveGeometry): ``out = (n-1)//stride + 1``
    (rounded up with pooling's ``ceilOutDim``), and the ``k_eff - 1`` padding is
    split around the ``extra`` leftover pixels: begin ``(k_eff-1)//2 - extra//2``.
    This differs from TensorFlow's SAME (n=8, k=3, stride 2: CNTK (1, 0), TF
    (0, 1)).  With ``ceil``, ``extra`` may be -1 and C++'s truncating division is
    reproduced.  Checked by brute force against CNTK 2.7
    (tests/frontends/cntk/test_autopad.py).
    """
    ek = (k - 1) * dilation + 1
    out = -(-(n - 1) // stride) + 1 if ceil else (n - 1) // stride + 1
    extra = n - ((out - 1) * stride + 1)
    center = int(extra / 2)
    lo = (ek - 1) // 2 - center
    hi = (ek - 1) - (ek - 1) // 2 - (extra - center)
    if hi < 0 and (n + lo - ek) // stride + 1 == out:
        hi = 0
    return lo, hi
