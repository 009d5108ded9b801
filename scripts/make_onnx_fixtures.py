#!/usr/bin/env python3
"""Make the checked-in ONNX fixtures: reduced-width torchvision models exported by both
torch.onnx exporters, with their onnxruntime reference outputs.

Runs in the torchvision env (PyPI's torchvision does not import beside the project's
CPU torch 2.13.0), not in the tests or CI::

    python="$(bash scripts/setup_torchvision_env.sh)"
    "$python" scripts/make_onnx_fixtures.py            # writes tests/fixtures/onnx/
    "$python" scripts/make_onnx_fixtures.py --full DIR # full-size models for hand checks

Weights are random (seeded); BatchNorm statistics are calibrated on random images (a
few batches in train mode, then eval).  Each fixture is ``NAME.onnx`` (plus
``NAME.onnx.data`` for external data) and ``NAME.npz`` with ``input`` and ``output``
(onnxruntime on the file).  ``MANIFEST.json`` lists them with the exporter, opset,
input shape and sizes; every file stays under 2 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "onnx"
LIMIT = 2 * 1024 * 1024


def _small_models():
    """name -> (constructor, input shape): torchvision architectures at reduced width."""
    from torchvision import models
    from torchvision.models import efficientnet, regnet

    def effnet() -> object:
        conf, last = efficientnet._efficientnet_conf("efficientnet_b0", width_mult=0.25,
                                                     depth_mult=0.34)
        return efficientnet.EfficientNet(conf, 0.2, num_classes=10, last_channel=last)

    def regnet_small() -> object:
        params = regnet.BlockParams.from_init_params(depth=6, w_0=8, w_a=4.0, w_m=2.0,
                                                     group_width=8, se_ratio=0.25)
        return regnet.RegNet(params, num_classes=10)

    return {
        # input sizes keep the last stage's maps at least as large as its kernels (CNTK
        # refuses a kernel larger than its input even when padded)
        "mobilenet_v2": (lambda: models.mobilenet_v2(width_mult=0.25, num_classes=10),
                         (3, 96, 96)),
        "mobilenet_v3_small": (lambda: _mnv3_small(models), (3, 160, 160)),
        "shufflenet": (lambda: models.ShuffleNetV2([2, 2, 2], [12, 24, 48, 96, 256],
                                                   num_classes=10), (3, 96, 96)),
        "efficientnet": (effnet, (3, 160, 160)),
        "regnet": (regnet_small, (3, 64, 64)),
    }


def _mnv3_small(models: object) -> object:
    from torchvision.models import mobilenetv3

    conf, last = mobilenetv3._mobilenet_v3_conf("mobilenet_v3_small", width_mult=0.5)
    return mobilenetv3.MobileNetV3(conf, last // 4, num_classes=10)


FULL = {
    "resnet50": (3, 224, 224), "mobilenet_v3_large": (3, 224, 224),
    "efficientnet_b0": (3, 224, 224), "densenet121": (3, 224, 224),
    "inception_v3": (3, 299, 299), "mobilenet_v2": (3, 224, 224),
    "shufflenet_v2_x1_0": (3, 224, 224), "regnet_y_400mf": (3, 224, 224),
    "squeezenet1_1": (3, 224, 224), "vgg11_bn": (3, 224, 224),
}


def calibrate(model, shape: tuple[int, ...]):
    """Non-trivial random weights and BatchNorm running stats from real activations.

    torchvision initializes BN to the identity and classifiers with std 0.01, which
    makes outputs so small that any conversion error would hide under the tolerance;
    BN scales/shifts and Linear layers are re-drawn so outputs are of order 1.
    """
    import math

    import torch
    from torch import nn

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 1.0 / math.sqrt(m.in_features))
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, *shape) * 1.5 + 0.2)
    return model.eval()


def export(model, shape: tuple[int, ...], path: Path, dynamo: bool,
           opset: int | None, external: bool = False) -> None:
    import torch

    example = torch.randn(2, *shape)
    kwargs: dict = {"input_names": ["input"], "output_names": ["output"]}
    if opset:
        kwargs["opset_version"] = opset
    if dynamo:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=1024)},)
        kwargs["external_data"] = external
    else:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), \
            redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=dynamo, **kwargs)


def reference(path: Path, shape: tuple[int, ...], seed: int) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    x = np.random.default_rng(seed).standard_normal((2, *shape)).astype(np.float32)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    return {"input": x, "output": out}


def make_small(out: Path) -> None:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict] = {}
    variants = [("torchscript", False, 13, False), ("dynamo", True, None, False)]
    for i, (name, (ctor, shape)) in enumerate(_small_models().items()):
        torch.manual_seed(i)
        model = calibrate(ctor(), shape)
        for tag, dynamo, opset, _ in variants:
            external = dynamo and name == "mobilenet_v2"
            stem = f"{name}_{tag}"
            path = out / f"{stem}.onnx"
            for old in out.glob(f"{stem}.onnx*"):
                old.unlink()
            export(model, shape, path, dynamo, opset, external)
            ref = reference(path, shape, seed=i)
            np.savez(out / f"{stem}.npz", **ref)
            files = sorted(p.name for p in out.glob(f"{stem}.*"))
            sizes = {f: (out / f).stat().st_size for f in files}
            big = [f for f, s in sizes.items() if s > LIMIT]
            if big:
                raise SystemExit(f"{big} over 2 MB; make {name} smaller")
            import onnx

            opset_used = next(o.version for o in onnx.load(str(path), load_external_data=False)
                              .opset_import if o.domain in ("", "ai.onnx"))
            manifest[stem] = {"architecture": name, "exporter": tag, "opset": opset_used,
                              "input_shape": list(shape), "external_data": external,
                              "files": sizes}
            print(f"{stem}: opset {opset_used}, {sum(sizes.values()) / 1e6:.2f} MB",
                  file=sys.stderr)
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def make_full(out: Path, names: list[str]) -> None:
    """Full-size torchvision models (random weights, calibrated BN), both exporters."""
    import torch
    from torchvision import models

    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        shape = FULL[name]
        torch.manual_seed(0)
        kwargs = {"aux_logits": False, "init_weights": True} if name == "inception_v3" else {}
        model = calibrate(getattr(models, name)(weights=None, **kwargs), shape)
        for tag, dynamo, opset in (("torchscript", False, 17), ("dynamo", True, None)):
            path = out / f"{name}_{tag}.onnx"
            export(model, shape, path, dynamo, opset, external=dynamo)
            print(f"{path}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--full", type=Path, metavar="DIR",
                        help="write full-size torchvision models to DIR instead")
    parser.add_argument("--models", nargs="*", default=list(FULL), help="with --full")
    args = parser.parse_args()
    if args.full:
        make_full(args.full, args.models)
    else:
        make_small(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
