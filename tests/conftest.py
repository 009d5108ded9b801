"""Shared pytest fixtures: the real CNTK and MXNet runtimes and the CNTK fixture models.

Tests that need CNTK carry ``@pytest.mark.cntk`` and take the ``cntk_python``
fixture (MXNet: ``@pytest.mark.mxnet`` and ``mxnet_python``).  On a developer
machine without the env they skip (so the rest of the suite stays usable);
under ``CI=true`` they fail instead, because a CI run that silently skipped
every CNTK test would prove nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mmconv.errors import RuntimeUnavailableError

FIXTURES_DIR = Path(__file__).parent / "fixtures"
CNTK_FIXTURES_DIR = FIXTURES_DIR / "cntk"


def pytest_configure(config: pytest.Config) -> None:
    # Declared in pyproject too; repeating it here keeps `pytest -p no:cacheprovider
    # --strict-markers` and out-of-tree runs happy.
    config.addinivalue_line(
        "markers",
        "cntk: needs the real CNTK 2.7 runtime (scripts/setup_cntk_env.sh); "
        "skipped without it, fails under CI=true",
    )
    config.addinivalue_line(
        "markers",
        "mxnet: needs the real mxnet 1.9.1 env (scripts/setup_mxnet_env.sh); "
        "skipped without it, fails under CI=true",
    )


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def cntk_python() -> str:
    """Path of the CNTK 2.7 interpreter (see mmconv.runtimes.cntk.find_cntk_python)."""
    from mmconv.runtimes.cntk import find_cntk_python

    try:
        return find_cntk_python()
    except RuntimeUnavailableError as exc:
        if _in_ci():
            pytest.fail(f"CNTK runtime required under CI=true: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def mxnet_python() -> str:
    """Path of the mxnet 1.9.1 interpreter (see mmconv.runtimes.mxnet.find_mxnet_python)."""
    from mmconv.runtimes.mxnet import find_mxnet_python

    try:
        return find_mxnet_python()
    except RuntimeUnavailableError as exc:
        if _in_ci():
            pytest.fail(f"MXNet runtime required under CI=true: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def cntk_fixtures_dir() -> Path:
    """tests/fixtures/cntk: models made by scripts/make_cntk_fixtures.py (see MANIFEST.json)."""
    if not (CNTK_FIXTURES_DIR / "MANIFEST.json").is_file():
        pytest.fail(f"{CNTK_FIXTURES_DIR}/MANIFEST.json missing; run scripts/make_cntk_fixtures.py")
    return CNTK_FIXTURES_DIR


@pytest.fixture(scope="session")
def cntk_manifest(cntk_fixtures_dir: Path) -> dict[str, dict[str, Any]]:
    """MANIFEST.json entries by fixture name (formats written, ops covered, input shapes)."""
    data = json.loads((cntk_fixtures_dir / "MANIFEST.json").read_text())
    return {entry["name"]: entry for entry in data["fixtures"]}
