"""docs/download.md lists every catalog entry (name and file) and every cited source link."""

from __future__ import annotations

from pathlib import Path

from mmconv.download.catalog import load_catalog

DOC = Path(__file__).resolve().parents[2] / "docs" / "download.md"


def test_every_catalog_entry_and_source_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    catalog = load_catalog()
    for model in catalog:
        assert f"| {model.name} | {model.file} |" in text, model.name
        for checksum in (model.sha256, model.md5, model.sha256_prefix):
            if checksum:
                assert checksum in text, model.name
    for source in catalog.sources.values():
        assert source.ref in text, source.key
