"""The Keras frontend: Keras 3 ``.keras`` and legacy HDF5 ``.h5`` files -> IR, without Keras.

The model config is walked layer by layer (:mod:`.model`, :mod:`.builder`), the
weights are read straight from the file with h5py (:mod:`.reader`); no
TensorFlow graph is traced.  Layer names become IR node names.  Keras tensors
are channels-last; the IR is channels-first (:mod:`.context` says how the layout
is tracked).  By default the IR keeps the model's channels-last inputs and
outputs; ``channels_first_io=True`` makes rank >= 3 inputs/outputs channels-first
instead, with no transpose at the boundary.
"""

from __future__ import annotations

import zipfile

from mmconv.errors import ModelFormatError, UsageError
from mmconv.frontends.base import Frontend
from mmconv.ir import Graph

#: what the zip and HDF5 libraries raise on a damaged file
DAMAGE = (OSError, KeyError, RuntimeError, NotImplementedError, ValueError, EOFError,
          zipfile.BadZipFile)


def convert(network: str | None, weights: str | None, *,
            input_shapes: list[tuple[int, ...]] | None = None,
            input_names: list[str] | None = None,
            output_names: list[str] | None = None,
            channels_first_io: bool = False) -> Graph:
    """A ``.keras`` or ``.h5`` model file -> IR Graph (either of ``-n``/``-w`` names it)."""
    from mmconv.frontends.keras.builder import build_graph
    from mmconv.frontends.keras.model import ConfigError, parse
    from mmconv.frontends.keras.reader import open_keras_file, preflight

    path = weights or network
    if not path:
        raise UsageError("Keras: give the model file (.keras or .h5) with -iw (or -in)")
    if input_names or output_names:
        raise UsageError("Keras: --inNodeName/--dstNodeName are not supported for Keras files "
                         "(the model's own inputs and outputs are used)")
    preflight(path)
    try:
        with open_keras_file(path) as kf:
            try:
                spec = parse(kf.config)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            return build_graph(kf, spec, input_shapes=input_shapes,
                               channels_first_io=channels_first_io)
    except DAMAGE as exc:
        # h5py reports a damaged HDF5 structure (from any object it opens lazily) as
        # KeyError/RuntimeError/OSError; zipfile as NotImplementedError/BadZipFile
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ModelFormatError(f"{path}: a damaged Keras file ({detail})") from None


FRONTEND = Frontend("keras", convert, channels_last=True)
