"""tf2onnx's conversion of a Keras model file, as a user runs it (the baseline of the Keras
section of scripts/bench.py): load the .keras file with Keras, tf2onnx.convert.from_keras,
write the ONNX file.

    python scripts/bench_tf2onnx_keras.py MODEL.keras OUT.onnx
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    import keras
    import tensorflow as tf
    import tf2onnx

    model = keras.models.load_model(sys.argv[1], compile=False)
    spec = [tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=f"input_{i}")
            for i, t in enumerate(model.inputs)]
    tf2onnx.convert.from_keras(model, input_signature=spec, output_path=sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
