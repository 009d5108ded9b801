"""Every checked-in ``*_pb2.py`` must describe exactly the ``.proto`` beside it.

Regenerate after editing a schema with:
``python -m grpc_tools.protoc -I. --python_out=. path/to/schema.proto``
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[1]
PROTOS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "mmconv").rglob("*.proto"))


def compiled_descriptor(proto: str, tmp_path: Path) -> descriptor_pb2.FileDescriptorProto:
    try:
        import grpc_tools  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("grpcio-tools is needed to check generated protobuf code")
        pytest.skip("grpcio-tools not installed")
    out = tmp_path / "set.pb"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT}", f"--descriptor_set_out={out}",
         proto],
        check=True,
    )
    (fdp,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    # protoc records derived json_name values that the runtime descriptor omits
    for message in fdp.message_type:
        _clear_json_names(message)
    return fdp


def _clear_json_names(message: descriptor_pb2.DescriptorProto) -> None:
    for field in message.field:
        field.ClearField("json_name")
    for nested in message.nested_type:
        _clear_json_names(nested)


def test_there_are_protos() -> None:
    assert "mmconv/ir/graph.proto" in PROTOS


@pytest.mark.parametrize("proto", PROTOS)
def test_generated_module_matches_proto(proto: str, tmp_path: Path) -> None:
    module = importlib.import_module(proto.removesuffix(".proto").replace("/", ".") + "_pb2")
    actual = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(actual)
    assert actual == compiled_descriptor(proto, tmp_path), f"regenerate the module of {proto}"
