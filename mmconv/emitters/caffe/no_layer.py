"""Why the IR's recurrent ops and loops have no Caffe form (the refusal says it).

A Caffe file of this target must mean the same to BVLC Caffe and to OpenCV 4's
dnn module (the runtime it is checked with).  For recurrent layers no such
file exists; found in the sources (BVLC Caffe at 9b89154, OpenCV 4.14.0) and
confirmed with ``cv2.dnn.readNetFromCaffe``:

- ``LSTM``: BVLC's ``LSTMLayer`` (``RecurrentLayer``) takes bottoms ``x
  [T, N, ...]`` and ``cont [T, N]`` (``MinBottomBlobs`` 2, ``+ 1`` for
  ``x_static``, ``+ 2`` with ``expose_hidden``) and exactly three blobs
  ``W_xc [4H, D]``, ``b_c [4H]``, ``W_hc [4H, H]`` (``Net::CopyTrainedLayersFrom``:
  "Incompatible number of blobs").  OpenCV's importer passes type, bottoms and
  blobs through unchanged to its own ``LSTMLayerImpl``, which reads blob 0 as
  ``Wh [4H, H]`` (recurrent_layers.cpp:193 fails on Caffe's ``W_xc``), asserts
  five blobs ``Wh, Wx, b, h0, c0`` (:296) and one or three bottoms ``x`` or
  ``x, h0, c0`` (:297: Caffe's ``x, cont`` is refused).  Both runtimes use the
  gate order i, f, o, g, but no bottom list or blob list is valid in both.
- ``GRU``: BVLC Caffe has no GRU layer; OpenCV's ``GRU`` type (blobs ``Wh, Wx,
  b, h0``) is read by no Caffe.
- ``RNN``: BVLC's ``RNN`` layer exists (it outputs ``tanh(W_ho h_t + b_o)``), but
  OpenCV 4 does not register the type for the Caffe importer ("Can't create layer
  of type RNN").
- ``Scan``: Caffe has no loop construct.

docs/recurrent.md (Caffe) has the details.
"""

from __future__ import annotations

_ELSEWHERE = "; convert to a target with recurrent layers (-df onnx, pytorch, keras, cntk)"

#: IR op -> why Caffe (as BVLC Caffe and OpenCV 4 both read it) cannot express it.
NO_LAYER_REASONS: dict[str, str] = {
    "LSTM": "no Caffe LSTM layer reads the same in BVLC Caffe and OpenCV 4 (Caffe needs "
            "bottoms x, cont and blobs W_xc, b_c, W_hc; OpenCV takes bottoms x or x, h0, c0 "
            "and blobs Wh, Wx, b, h0, c0)" + _ELSEWHERE,
    "GRU": "BVLC Caffe has no GRU layer (OpenCV's own GRU type is read by no Caffe)"
           + _ELSEWHERE,
    "RNN": "OpenCV 4 cannot load Caffe's RNN layer (the type is not registered for its "
           "Caffe importer)" + _ELSEWHERE,
    "Scan": "Caffe has no loop construct; convert with -df onnx (a Scan node)",
}
