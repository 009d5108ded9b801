"""Models exported by the real torch.onnx (TorchScript-based and dynamo exporters) at test
time, converted to every target and compared with onnxruntime on the exported file."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxscript")  # the dynamo exporter needs it

from tests.frontends.onnx import torch_nets
from tests.frontends.onnx._common import convert_and_check

#: exporter -> (dynamo, opset); the TorchScript exporter at an older and a newer opset
EXPORTERS = {"torchscript11": (False, 11), "torchscript17": (False, 17), "dynamo": (True, None)}
ALL = ("onnx", "pytorch", "keras", "cntk")
#: (net, exporter) pairs and the targets each is checked on.  The ViT skips CNTK: its
#: nn.MultiheadAttention transposes the batch away from axis 0 ([T, N, D]) and reshapes
#: across it, which CNTK (batch a dynamic axis) refuses with one UnsupportedError
CASES = [
    ("convnet", "torchscript11", ALL),
    ("convnet", "dynamo", ALL),
    ("mobile", "torchscript11", ALL),
    ("mobile", "dynamo", ALL),
    ("transformer", "torchscript17", ALL),
    ("transformer", "dynamo", ALL),
    ("math", "torchscript11", ALL),
    ("math", "dynamo", ALL),
    ("vit", "torchscript17", ("onnx", "pytorch", "keras")),
    ("vit", "dynamo", ("onnx", "pytorch", "keras")),
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Each (net, exporter) exported once per module."""
    folder = tmp_path_factory.mktemp("torch_onnx")
    files = {}
    for net, exporter, _ in CASES:
        dynamo, opset = EXPORTERS[exporter]
        model, example = torch_nets.build(net)
        files[net, exporter] = torch_nets.export(
            model, example, folder / f"{net}_{exporter}.onnx", dynamo=dynamo, opset=opset,
            external_data=dynamo)
    return files


@pytest.mark.parametrize(("net", "exporter", "targets"), CASES,
                         ids=[f"{n}-{e}" for n, e, _ in CASES])
def test_exported_model_converts_to_every_target(
        net: str, exporter: str, targets: tuple[str, ...], exported: dict, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    if "cntk" in targets:
        request.getfixturevalue("cntk_python")
    graph = convert_and_check(exported[net, exporter], targets, tmp_path)
    assert graph.inputs[0].shape[0] is None, "the batch axis stays dynamic"
    # shape arithmetic is folded: no Shape/Gather-on-shape sub-graphs reach the IR (the
    # ViT's Gathers pick q/k/v and the class token from activations)
    if net != "vit":
        assert all(n.op != "Gather" for n in graph.nodes)


def test_dynamo_writes_external_data_and_it_is_mapped(exported: dict) -> None:
    """dynamo=True with external_data writes model.onnx + model.onnx.data; the reader maps
    the data file instead of copying it."""
    from mmconv.frontends.onnx import read_model

    path = exported["convnet", "dynamo"]
    assert Path(f"{path}.data").is_file()
    model = read_model(path)
    views = [a for a in model.arrays.values() if a.size > 16]
    assert views and all(not a.flags.owndata for a in views)


def test_names_come_from_the_torch_modules(exported: dict) -> None:
    from mmconv.frontends.onnx import convert

    for exporter in ("torchscript11", "dynamo"):
        graph = convert(str(exported["convnet", exporter]), None)
        names = {n.name for n in graph.nodes}
        assert "features_0_conv" in names, sorted(names)
        assert any(w.startswith("features_0_conv/") for w in graph.weights), sorted(graph.weights)
        assert graph.outputs == ["output"]
