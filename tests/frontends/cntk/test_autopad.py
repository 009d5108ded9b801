"""CNTK's auto padding: where the odd pixel goes (values observed with CNTK 2.7)."""

from __future__ import annotations

import pytest

from mmconv.formats.cntk import auto_pads

# (input, kernel, stride) -> pad_begin found by matching CNTK 2.7's 1-D convolution output
# against numpy with every (begin, end) pair; end is any value giving the same output size.
OBSERVED_BEGIN = {
    (7, 2, 1): 0, (7, 3, 2): 1, (7, 4, 1): 1, (7, 4, 2): 1, (7, 6, 3): 2,
    (8, 2, 2): 0, (8, 3, 2): 1, (8, 3, 3): 1, (8, 4, 2): 1, (8, 5, 2): 2, (8, 6, 1): 2,
    (9, 3, 3): 0, (9, 4, 3): 0, (9, 5, 3): 1, (9, 6, 3): 1, (9, 6, 2): 2,
}


@pytest.mark.parametrize(("key", "begin"), sorted(OBSERVED_BEGIN.items()))
def test_begin_pad_matches_cntk(key: tuple[int, int, int], begin: int) -> None:
    n, k, s = key
    lo, hi = auto_pads(n, k, s, 1)
    assert lo == begin
    assert (n + lo + hi - k) // s + 1 == -(-n // s)  # CNTK's output size: ceil(n / stride)


def test_differs_from_tensorflow_same() -> None:
    # TF SAME on n=8, k=3, stride 2 pads (0, 1); CNTK centres the windows: (1, 0).
    assert auto_pads(8, 3, 2, 1) == (1, 0)
