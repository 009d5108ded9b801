"""The packaged catalog: MMdnn's CNTK set is there exactly, every fact is cited, lookups explain."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from mmconv.download.catalog import load_catalog, parse_catalog, url_file_name
from mmconv.errors import UsageError

CNTK_BASE = "https://www.cntk.ai/Models/CNTK_Pretrained/"
#: MMdnn's mmdnn/conversion/examples/cntk/extractor.py architecture_map, verbatim.
MMDNN_CNTK = {
    "alexnet": CNTK_BASE + "AlexNet_ImageNet_CNTK.model",
    "inception_v3": CNTK_BASE + "InceptionV3_ImageNet_CNTK.model",
    "resnet18": CNTK_BASE + "ResNet18_ImageNet_CNTK.model",
    "resnet50": CNTK_BASE + "ResNet50_ImageNet_CNTK.model",
    "resnet101": CNTK_BASE + "ResNet101_ImageNet_CNTK.model",
    "resnet152": CNTK_BASE + "ResNet152_ImageNet_CNTK.model",
    "Fast-RCNN_grocery100": "https://www.cntk.ai/Models/FRCN_Grocery/Fast-RCNN_grocery100.model",
    "Fast-RCNN_Pascal": "https://www.cntk.ai/Models/FRCN_Pascal/Fast-RCNN.model",
}


def raw_catalog() -> dict[str, Any]:
    text = resources.files("mmconv.download").joinpath("catalog.json").read_text("utf-8")
    return json.loads(text)


def test_cntk_set_matches_mmdnn() -> None:
    catalog = load_catalog()
    got = {m.name: m.url for m in catalog.models("cntk")}
    assert got == MMDNN_CNTK
    assert catalog.find("cntk", "Fast-RCNN_Pascal").file == "Fast-RCNN.model"
    assert catalog.find("cntk", "resnet50").file == "ResNet50_ImageNet_CNTK.model"


def test_every_framework_has_entries_and_every_entry_is_cited() -> None:
    catalog = load_catalog()
    for fw in ("cntk", "onnx", "keras", "pytorch"):
        assert catalog.models(fw), fw
    for model in catalog:
        assert model.sources, model.name
        assert model.file == url_file_name(model.url)
        for source in model.sources:
            assert source.ref.startswith("https://") and source.licence


def test_checksums_only_where_sources_state_them() -> None:
    catalog = load_catalog()
    # CNTK's site and repository publish no sizes or checksums: none may be invented
    assert all(m.size is None and not m.has_full_checksum for m in catalog.models("cntk"))
    onnx = catalog.find("onnx", "resnet50")
    assert onnx.size == 102442452
    assert onnx.sha256 == "79102261eb6e5fd7af5d27f41316293e388c5cb691e5d25bfb035c4f64fefe31"
    assert catalog.find("keras", "resnet50").md5 == "2cb95161c43110f7111970584f804107"
    assert catalog.find("pytorch", "resnet18").sha256_prefix == "5c106cde"
    for model in catalog.models("pytorch"):  # torch.hub convention: name-<sha256 prefix>.pth
        assert model.file.rsplit(".", 1)[0].endswith("-" + model.sha256_prefix)


def test_aliases_and_case_insensitive_names() -> None:
    catalog = load_catalog()
    assert catalog.framework("TF").name == "keras"
    assert catalog.framework("tensorflow").name == "keras"
    assert catalog.framework("torch").name == "pytorch"
    assert catalog.find("CNTK", "ResNet50").name == "resnet50"
    assert catalog.find("cntk", "fast-rcnn_pascal").name == "Fast-RCNN_Pascal"


def test_unknown_names_list_the_known_ones() -> None:
    catalog = load_catalog()
    with pytest.raises(UsageError) as info:
        catalog.find("cntk", "resnet34")
    assert "resnet18" in str(info.value) and "Fast-RCNN_Pascal" in str(info.value)
    with pytest.raises(UsageError, match=r"known: .*cntk.*onnx"):
        catalog.framework("caffe")


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["models"][0].update(file="other.model"), "must be the URL's file name"),
    (lambda d: d["models"][0].update(sha256="abc"), "sha256 must have 64"),
    (lambda d: d["models"][0].update(sha256="Z" * 64), "lowercase hex"),
    (lambda d: d["models"][0].update(sources=["nowhere"]), "unknown sources"),
    (lambda d: d["models"][0].update(sources=[]), "cite at least one source"),
    (lambda d: d["models"][0].update(size=-1), "positive integer"),
    (lambda d: d["models"][0].update(url="ftp://x/AlexNet_ImageNet_CNTK.model"), "http"),
    (lambda d: d["models"][1].update(name=d["models"][0]["name"].upper()), "duplicate"),
    (lambda d: d["frameworks"]["onnx"].update(aliases=["tf"]), "used twice"),
    (lambda d: d["frameworks"]["onnx"].update(format="caffe"), "format must be"),
])
def test_malformed_catalogs_are_rejected(mutate, message: str) -> None:
    data = copy.deepcopy(raw_catalog())
    mutate(data)
    with pytest.raises(ValueError, match=message):
        parse_catalog(data)


def test_catalog_file_can_be_loaded_from_a_path(tmp_path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(raw_catalog()))
    assert len(load_catalog(path)) == len(load_catalog())
