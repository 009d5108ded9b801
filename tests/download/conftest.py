"""Fixtures for download tests: a real HTTP server on 127.0.0.1 and impatient settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mmconv.download.downloader import ENV_MIRROR, Settings

from .httpserver import FileServer


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never route test traffic through a proxy, never inherit a mirror from the shell."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv(ENV_MIRROR, raising=False)


@pytest.fixture
def server() -> Iterator[FileServer]:
    """A started :class:`FileServer`, stopped after the test."""
    with FileServer() as srv:
        yield srv


@pytest.fixture
def fast() -> Settings:
    """Small timeouts and tiny backoff so failure paths take milliseconds, not minutes."""
    return Settings(timeout=1.0, retries=3, backoff=0.01, backoff_cap=0.05, chunk_size=4096)
