"""The Core ML tests need coremltools (the ``coreml`` extra); without it they skip,
under CI=true they fail (scripts/test.sh installs the extra)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ct():
    from mmconv.emitters.coreml.runtime import import_coremltools
    from mmconv.errors import RuntimeUnavailableError

    try:
        return import_coremltools()
    except RuntimeUnavailableError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"coremltools required under CI=true: {exc}")
        pytest.skip(str(exc))
