"""Why the Caffe target refuses LSTM/GRU/RNN, pinned against the real OpenCV 4.

mmconv/emitters/caffe/no_layer.py says no Caffe recurrent layer file reads the same
in BVLC Caffe and OpenCV's dnn.  These tests hand OpenCV small hand-written
prototxt/caffemodel pairs: BVLC Caffe's LSTM layout must fail to load or run,
OpenCV's own LSTM layout with BVLC's ``cont`` bottom too, and Caffe's ``RNN``
type must be unknown.  OpenCV's own layout without ``cont`` runs and matches numpy
(gate order i, f, o, g), so the failures are the layouts', not the harness's.  If a
future OpenCV reads Caffe's layout, the first test fails: time to emit LSTM.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from mmconv.emitters.caffe import caffe_pb2 as pb

T, N, D, H = 3, 2, 4, 5
SHAPES = {"x": (T, N, D), "cont": (T, N)}


def _weights() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return (rng.standard_normal((4 * H, D)).astype(np.float32),   # W_xc / Wx
            rng.standard_normal((4 * H, H)).astype(np.float32),   # W_hc / Wh
            rng.standard_normal(4 * H).astype(np.float32))        # b_c / b


def _run(tmp_path: Path, type_: str, bottoms: Sequence[str], blobs: Sequence[np.ndarray],
         feeds: dict[str, np.ndarray]) -> np.ndarray:
    """One recurrent layer (named and topped ``h``: OpenCV's LSTM names its outputs h, c)
    read by a Power layer, loaded and run by OpenCV."""
    import cv2

    text = "".join(
        f'layer {{ name: "{b}" type: "Input" top: "{b}" input_param {{ shape {{ '
        + " ".join(f"dim: {d}" for d in SHAPES[b]) + " } } }\n" for b in bottoms)
    text += (f'layer {{ name: "h" type: "{type_}" '
             + " ".join(f'bottom: "{b}"' for b in bottoms)
             + f' top: "h" recurrent_param {{ num_output: {H} }} }}\n'
             'layer { name: "out" type: "Power" bottom: "h" top: "out" }\n')
    (tmp_path / "net.prototxt").write_text(text)
    net = pb.NetParameter()
    layer = net.layer.add(name="h", type=type_)
    for a in blobs:
        layer.blobs.add(shape=pb.BlobShape(dim=list(a.shape)), data=a.ravel().tolist())
    (tmp_path / "net.caffemodel").write_bytes(net.SerializeToString())
    model = cv2.dnn.readNetFromCaffe(str(tmp_path / "net.prototxt"),
                                     str(tmp_path / "net.caffemodel"))
    for name, value in feeds.items():
        model.setInput(value, name)
    return np.asarray(model.forward("out"))


def _feeds(with_cont: bool) -> dict[str, np.ndarray]:
    x = np.random.default_rng(8).standard_normal(SHAPES["x"]).astype(np.float32)
    cont = np.ones(SHAPES["cont"], np.float32)
    cont[0] = 0  # BVLC: a new sequence starts at t = 0
    return {"x": x, "cont": cont} if with_cont else {"x": x}


def _lstm(x: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray) -> np.ndarray:
    """BVLC Caffe's LSTM from zero states, gates i, f, o, g: [T, N, H]."""
    def sig(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))
    h = c = np.zeros((x.shape[1], H))
    ys = []
    for t in range(x.shape[0]):
        g = x[t] @ wx.T + h @ wh.T + b
        i, f, o = sig(g[:, :H]), sig(g[:, H:2 * H]), sig(g[:, 2 * H:3 * H])
        c = f * c + i * np.tanh(g[:, 3 * H:])
        h = o * np.tanh(c)
        ys.append(h)
    return np.stack(ys)


def test_opencv_rejects_bvlc_caffes_lstm(tmp_path: Path) -> None:
    """BVLC's layout: bottoms x, cont; blobs W_xc, b_c, W_hc (recurrent_layers.cpp:193
    reads blob 0 as Wh [4H, H])."""
    import cv2

    wx, wh, b = _weights()
    with pytest.raises(cv2.error, match=r"Wh\.rows"):
        _run(tmp_path, "LSTM", ["x", "cont"], [wx, b, wh], _feeds(True))


def test_opencv_rejects_the_cont_bottom(tmp_path: Path) -> None:
    """OpenCV's own blobs (Wh, Wx, b, h0, c0) with BVLC's required cont bottom: OpenCV
    takes one or three bottoms (x or x, h0, c0; recurrent_layers.cpp:297)."""
    import cv2

    wx, wh, b = _weights()
    zeros = np.zeros((N, H), np.float32)
    with pytest.raises(cv2.error, match=r"inputs.size\(\) == 1 \|\| inputs.size\(\) == 3"):
        _run(tmp_path, "LSTM", ["x", "cont"], [wh, wx, b, zeros, zeros], _feeds(True))


def test_opencv_runs_only_its_own_lstm_layout(tmp_path: Path) -> None:
    """The harness works: OpenCV's layout (one bottom; Wh, Wx, b and the initial states
    h0, c0 as [N, H] blobs, a batch fixed in the file) is BVLC's LSTM arithmetic."""
    wx, wh, b = _weights()
    zeros = np.zeros((N, H), np.float32)
    feeds = _feeds(False)
    got = _run(tmp_path, "LSTM", ["x"], [wh, wx, b, zeros, zeros], feeds)
    want = _lstm(feeds["x"], wx, wh, b)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_opencv_has_no_caffe_rnn(tmp_path: Path) -> None:
    """BVLC's RNN layer (blobs W_xh, b_h, W_hh, W_ho, b_o; bottoms x, cont): OpenCV 4
    does not register the type for its Caffe importer."""
    import cv2

    rng = np.random.default_rng(9)
    blobs = [rng.standard_normal(s).astype(np.float32)
             for s in ((H, D), (H,), (H, H), (H, H), (H,))]
    with pytest.raises(cv2.error, match='type "RNN"'):
        _run(tmp_path, "RNN", ["x", "cont"], blobs, _feeds(True))
