"""The tolerance rule and the comparison report."""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.verify.compare import assert_close, compare


def test_rule_scales_with_reference_magnitude() -> None:
    ref = np.array([[100.0, -50.0]], np.float32)
    assert compare("y", ref, ref + 0.009).passed  # 1e-4 * 100 = 0.01
    assert not compare("y", ref, ref + 0.011).passed
    small = np.array([[0.5, 0.25]], np.float32)
    assert compare("y", small, small + 9e-5).passed  # floor of 1 on the scale
    assert not compare("y", small, small + 2e-4).passed


def test_report_numbers() -> None:
    ref = np.array([[1.0, 3.0], [2.0, 0.0]], np.float32)
    got = np.array([[1.0, 3.0], [0.0, 2.0]], np.float32)
    result = compare("prob", ref, got)
    assert result.max_abs == pytest.approx(2.0)
    assert result.top1_agreement == pytest.approx(0.5)
    assert result.needed_rtol == pytest.approx(2.0 / 3.0)
    assert "MISMATCH" in str(result) and "prob" in str(result)


def test_non_finite_values() -> None:
    ref = np.array([np.nan, np.inf, 1.0])
    assert compare("y", ref.astype(np.float32), ref.astype(np.float32)).passed
    assert not compare("y", ref, np.array([0.0, np.inf, 1.0])).passed
    assert not compare("y", np.array([1.0, 2.0]), np.array([1.0, np.nan])).passed


def test_shapes() -> None:
    # same elements, different rank (a legacy CNTK file keeps singleton axes): compared
    assert compare("y", np.zeros((1, 1, 1)), np.zeros(())).passed
    assert not compare("y", np.zeros((2, 3)), np.zeros((3, 3))).passed
    with pytest.raises(AssertionError, match="MISMATCH"):
        assert_close(np.zeros(3), np.ones(3))


def test_dtype_tolerances() -> None:
    ref = np.ones(4, np.float16)
    assert compare("y", ref, ref + np.float16(0.005)).passed
    ref64 = np.ones(4, np.float64)
    assert not compare("y", ref64, ref64 + 1e-6).passed
