'''Module-level helper functions that generated code may need, as source text.

Most IR ops are one ``torch``/``F`` call or one ``nn`` layer.  A few have no
PyTorch counterpart with the IR's exact meaning (ONNX MaxRoiPool, pooling with
dilated average windows or asymmetric pads whose padding must stay out of the
divisor).  Their code lives here, written once and
TorchScript-compatible, and is copied into a generated file only when one of its
nodes needs it, so a plain conv net's code holds no helpers at all.  The texts
are fixed (no model data enters them), which keeps generated code deterministic
and safe.
'''

from __future__ import annotations

POOL = '''
def _pool(x: torch.Tensor, mode: str, kernel: list[int], strides: list[int],
          dilations: list[int], pads: list[int], ceil_mode: bool,
          count_include_pad: bool) -> torch.Tensor:
    """ONNX MaxPool/AveragePool with explicit begin/end pads, for the cases PyTorch's
    pooling layers cannot express (asymmetric pads kept out of an average's divisor,
    dilated averages, ceil mode on asymmetric pads of a dynamic size)."""
    n = len(kernel)
    torch_pads: list[int] = []
    mask_pads: list[int] = []
    for i in range(n - 1, -1, -1):
        size = x.shape[2 + i]
        span = (kernel[i] - 1) * dilations[i] + 1
        total = size + pads[i] + pads[n + i] - span
        out = total // strides[i] + 1
        if ceil_mode:
            out = (total + strides[i] - 1) // strides[i] + 1
            if (out - 1) * strides[i] >= size + pads[i]:
                out -= 1
        overhang = max(0, (out - 1) * strides[i] + span - size - pads[i] - pads[n + i])
        torch_pads += [pads[i], pads[n + i] + overhang]
        mask_pads += [pads[i], pads[n + i]]
    if mode == "max":
        padded = F.pad(x, torch_pads, value=-float("inf"))
        if n == 1:
            return F.max_pool1d(padded, kernel, strides, 0, dilations)
        if n == 2:
            return F.max_pool2d(padded, kernel, strides, 0, dilations)
        return F.max_pool3d(padded, kernel, strides, 0, dilations)
    # average: window sums and element counts as depthwise convolutions with ones
    channels = x.shape[1]
    ones = torch.ones([channels, 1] + kernel, dtype=x.dtype, device=x.device)
    mask = torch.ones([1, 1] + list(x.shape[2:]), dtype=x.dtype, device=x.device)
    if count_include_pad:
        mask = F.pad(mask, mask_pads, value=1.0)
        overhang_pads: list[int] = []
        for j in range(n):
            overhang_pads += [0, torch_pads[2 * j + 1] - mask_pads[2 * j + 1]]
        mask = F.pad(mask, overhang_pads, value=0.0)
    else:
        mask = F.pad(mask, torch_pads, value=0.0)
    padded = F.pad(x, torch_pads, value=0.0)
    if n == 1:
        sums = F.conv1d(padded, ones, None, strides, 0, dilations, channels)
        counts = F.conv1d(mask, ones[:1], None, strides, 0, dilations)
    elif n == 2:
        sums = F.conv2d(padded, ones, None, strides, 0, dilations, channels)
        counts = F.conv2d(mask, ones[:1], None, strides, 0, dilations)
    else:
        sums = F.conv3d(padded, ones, None, strides, 0, dilations, channels)
        counts = F.conv3d(mask, ones[:1], None, strides, 0, dilations)
    return sums / counts
'''

MAX_ROI_POOL = '''
def _max_roi_pool(x: torch.Tensor, rois: torch.Tensor, pooled_h: int, pooled_w: int,
                  spatial_scale: float) -> torch.Tensor:
    """ONNX MaxRoiPool (Fast R-CNN): each box, scaled and rounded half away from zero,
    is cut into pooled_h x pooled_w bins (floor/ceil bounds); empty bins are 0."""
    height, width = x.shape[2], x.shape[3]
    out = x.new_zeros([rois.shape[0], x.shape[1], pooled_h, pooled_w])
    scaled = rois[:, 1:5] * spatial_scale
    boxes = torch.sign(scaled) * torch.floor(torch.abs(scaled) + 0.5)
    for r in range(rois.shape[0]):
        batch = int(rois[r, 0].item())
        x1, y1 = int(boxes[r, 0].item()), int(boxes[r, 1].item())
        x2, y2 = int(boxes[r, 2].item()), int(boxes[r, 3].item())
        roi_h, roi_w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for i in range(pooled_h):
            h0 = min(max(int(math.floor(i * roi_h / pooled_h)) + y1, 0), height)
            h1 = min(max(int(math.ceil((i + 1) * roi_h / pooled_h)) + y1, 0), height)
            for j in range(pooled_w):
                w0 = min(max(int(math.floor(j * roi_w / pooled_w)) + x1, 0), width)
                w1 = min(max(int(math.ceil((j + 1) * roi_w / pooled_w)) + x1, 0), width)
                if h1 > h0 and w1 > w0:
                    out[r, :, i, j] = torch.amax(x[batch, :, h0:h1, w0:w1], dim=[1, 2])
    return out
'''

#: helper name -> (source text, module-level imports it needs besides torch/nn/F)
RESIZE_AXIS = '''
def _resize_axis(x: torch.Tensor, axis: int, i0: list[int], i1: list[int],
                 w: list[float]) -> torch.Tensor:
    """ONNX Resize along one axis: x[i0] * (1 - w) + x[i1] * w, the indices and weights
    computed at emit time from ONNX's formulas (nearest has i1 == i0, w == 0)."""
    first = torch.index_select(x, axis, torch.tensor(i0, device=x.device))
    if i1 == i0:
        return first
    second = torch.index_select(x, axis, torch.tensor(i1, device=x.device))
    shape = [1] * x.dim()
    shape[axis] = len(w)
    weight = torch.tensor(w, dtype=x.dtype, device=x.device).reshape(shape)
    return first + (second - first) * weight
'''

RECURRENT = '''
class _Recurrent(nn.Module):
    \"\"\"An ONNX LSTM with peepholes or a GRU resetting before the recurrent product
    (linear_before_reset=0, CNTK's GRU), which nn.LSTM/nn.GRU cannot compute: a time
    loop over the ONNX-layout parameters (weight_ih [D, G*H, I], weight_hh [D, G*H, H],
    bias [D, 2*G*H], peephole [D, 3*H]; gate orders i,o,f,c and z,r,h). Batch-first;
    returns Y [N, T, D, H] and the last states [N, D, H]. Trainable like nn.LSTM.\"\"\"

    def __init__(self, kind: str, input_size: int, hidden_size: int, directions: int,
                 reverse: bool) -> None:
        super().__init__()
        gates = 4 if kind == "LSTM" else 3
        self.kind = kind
        self.hidden_size = hidden_size
        self.directions = directions
        self.reverse = reverse
        self.weight_ih = nn.Parameter(torch.zeros(directions, gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.zeros(directions, gates * hidden_size,
                                                  hidden_size))
        self.bias = nn.Parameter(torch.zeros(directions, 2 * gates * hidden_size))
        self.peephole = nn.Parameter(torch.zeros(directions, 3 * hidden_size))

    def forward(self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hs = self.hidden_size
        half = self.bias.shape[1] // 2
        ys: list[torch.Tensor] = []
        hn: list[torch.Tensor] = []
        cn: list[torch.Tensor] = []
        for d in range(self.directions):
            w, r, p = self.weight_ih[d], self.weight_hh[d], self.peephole[d]
            wb, rb = self.bias[d, :half], self.bias[d, half:]
            h, c = h0[:, d], c0[:, d]
            xw = torch.matmul(x, w.t()) + wb
            steps = x.shape[1]
            backwards = self.reverse or d == 1
            out: list[torch.Tensor] = []
            for s in range(steps):
                g = xw[:, steps - 1 - s] if backwards else xw[:, s]
                if self.kind == "LSTM":
                    a = g + torch.matmul(h, r.t()) + rb
                    i = torch.sigmoid(a[:, :hs] + p[:hs] * c)
                    f = torch.sigmoid(a[:, 2 * hs:3 * hs] + p[2 * hs:] * c)
                    c = f * c + i * torch.tanh(a[:, 3 * hs:])
                    o = torch.sigmoid(a[:, hs:2 * hs] + p[hs:2 * hs] * c)
                    h = o * torch.tanh(c)
                else:
                    gh = torch.matmul(h, r[:2 * hs].t()) + rb[:2 * hs]
                    z = torch.sigmoid(g[:, :hs] + gh[:, :hs])
                    rr = torch.sigmoid(g[:, hs:2 * hs] + gh[:, hs:])
                    n = torch.tanh(g[:, 2 * hs:] + torch.matmul(rr * h, r[2 * hs:].t())
                                   + rb[2 * hs:])
                    h = (1 - z) * n + z * h
                out.append(h)
            if backwards:
                out.reverse()
            ys.append(torch.stack(out, 1))
            hn.append(h)
            cn.append(c)
        return torch.stack(ys, 2), torch.stack(hn, 1), torch.stack(cn, 1)
'''

HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "_Recurrent": (RECURRENT, ()),
    "_resize_axis": (RESIZE_AXIS, ()),
    "_pool": (POOL, ()),
    "_max_roi_pool": (MAX_ROI_POOL, ("math",)),
}
