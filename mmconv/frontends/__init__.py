"""Frontends: a source format in, an IR :class:`~mmconv.ir.Graph` out.

Each frontend is a subpackage exposing::

    def convert(network: str | None, weights: str | None, *,
                input_shapes: list[tuple[int, ...]] | None = None,
                input_names: list[str] | None = None,
                output_names: list[str] | None = None) -> Graph

``network``/``weights`` are MMdnn's ``-n``/``-w`` (a framework with a single
model file takes it from either).  Each also defines ``FRONTEND``, its
:class:`~mmconv.frontends.base.Frontend` description (what the CLI may ask of it).
Frontends never import emitters or each other; the CLI finds them here by name.
"""

from __future__ import annotations

from mmconv.dispatch import import_by_name
from mmconv.frontends.base import Frontend

#: Frontend name -> module; aliases are the spellings MMdnn accepted.
FRONTENDS = {
    "cntk": "mmconv.frontends.cntk",
    "keras": "mmconv.frontends.keras",
    "onnx": "mmconv.frontends.onnx",
    "tensorflow": "mmconv.frontends.tensorflow",
}
ALIASES: dict[str, str] = {"tf": "tensorflow", "tf.keras": "keras"}


def get_frontend(name: str) -> Frontend:
    """The frontend description for ``name``, or a UsageError listing the supported ones."""
    return import_by_name("source framework", FRONTENDS, ALIASES, name).FRONTEND
