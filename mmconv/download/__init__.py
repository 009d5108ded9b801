"""Known pretrained models (a catalog shipped as data) and a resumable, verified downloader.

``mmdownload`` (``mmconv.cli.mmdownload``) is the command; this package is what
it and other code use::

    from mmconv.download import download
    result = download("cntk", "resnet50", "./models")
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from mmconv.download.catalog import Catalog, ModelEntry, load_catalog
from mmconv.download.downloader import (
    ENV_MIRROR,
    Downloader,
    Result,
    Settings,
    Target,
    mirror_url,
)

__all__ = [
    "ENV_MIRROR",
    "Catalog",
    "Downloader",
    "ModelEntry",
    "Result",
    "Settings",
    "Target",
    "download",
    "load_catalog",
    "mirror_url",
]


def download(framework: str, name: str, directory: str | os.PathLike[str] = ".", *,
             url: str | None = None, settings: Settings | None = None,
             env: Mapping[str, str] | None = None) -> Result:
    """Download catalog model ``name`` of ``framework`` into ``directory``, verified.

    ``url`` overrides where it comes from (the catalog's checksums still
    apply); otherwise ``MMCONV_MIRROR`` in ``env`` (default: the process
    environment) redirects to ``<mirror>/<file name>``.
    """
    entry = load_catalog().find(framework, name)
    source = url or mirror_url(entry.url, entry.file, env)
    return Downloader(settings or Settings.from_env(env)).fetch(
        Target.from_entry(entry, source), directory)
