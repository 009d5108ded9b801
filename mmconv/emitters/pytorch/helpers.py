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
def _rnn_act(x: torch.Tensor, name: str, alpha: float, beta: float) -> torch.Tensor:
    \"\"\"One ONNX recurrent activation by name (alpha/beta as ONNX defines them).\"\"\"
    if name == "Sigmoid":
        return torch.sigmoid(x)
    if name == "Tanh":
        return torch.tanh(x)
    if name == "Relu":
        return torch.relu(x)
    if name == "Affine":
        return alpha * x + beta
    if name == "LeakyRelu":
        return F.leaky_relu(x, alpha)
    if name == "ThresholdedRelu":
        return torch.where(x > alpha, x, torch.zeros_like(x))
    if name == "ScaledTanh":
        return alpha * torch.tanh(beta * x)
    if name == "HardSigmoid":
        return torch.clamp(alpha * x + beta, 0.0, 1.0)
    if name == "Elu":
        return F.elu(x, alpha)
    if name == "Softsign":
        return F.softsign(x)
    if name == "Softplus":
        return F.softplus(x)
    raise ValueError("unknown recurrent activation " + name)


def _recurrent(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor,
               lens: typing.Optional[torch.Tensor], weight_ih: torch.Tensor,
               weight_hh: torch.Tensor, bias: torch.Tensor, peephole: torch.Tensor,
               kind: str, reverse: bool,
               activations: list[str], alphas: list[float], betas: list[float], clip: float,
               input_forget: bool, linear_before_reset: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    \"\"\"ONNX LSTM/GRU/RNN, batch-first, as a time loop over ONNX-layout weights
    (weight_ih [D, G*H, I], weight_hh [D, G*H, H], bias [D, 2*G*H], peephole [D, 3*H];
    gate orders i,o,f,c and z,r,h): any activation list (per direction), clip,
    input_forget, peepholes, both GRU resets, sequence_lens (zeros past a row's end,
    its last valid state). Returns Y [N, T, D, H] and the last states [N, D, H].\"\"\"
    hs = weight_hh.shape[2]
    directions = weight_ih.shape[0]
    half = bias.shape[1] // 2
    per = len(activations) // directions
    ys: list[torch.Tensor] = []
    hn: list[torch.Tensor] = []
    cn: list[torch.Tensor] = []
    for d in range(directions):
        acts = activations[d * per:(d + 1) * per]
        al = alphas[d * per:(d + 1) * per]
        be = betas[d * per:(d + 1) * per]
        w, r, p = weight_ih[d], weight_hh[d], peephole[d]
        wb, rb = bias[d, :half], bias[d, half:]
        h, c = h0[:, d], c0[:, d]
        xw = torch.matmul(x, w.t()) + wb
        steps = x.shape[1]
        backwards = reverse or d == 1
        out: list[torch.Tensor] = []
        for s in range(steps):
            t = steps - 1 - s if backwards else s
            g = xw[:, t]
            gh = torch.matmul(h, r.t()) + rb
            c_new = c
            if kind == "LSTM":
                a = g + gh
                pre = a[:, :hs] + p[:hs] * c
                i = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                             acts[0], al[0], be[0])
                if input_forget:
                    f = 1 - i
                else:
                    pre = a[:, 2 * hs:3 * hs] + p[2 * hs:] * c
                    f = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                                 acts[0], al[0], be[0])
                pre = a[:, 3 * hs:]
                c_new = f * c + i * _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0
                                             else pre, acts[1], al[1], be[1])
                pre = a[:, hs:2 * hs] + p[hs:2 * hs] * c_new
                o = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                             acts[0], al[0], be[0])
                h_new = o * _rnn_act(c_new, acts[2], al[2], be[2])
            elif kind == "GRU":
                pre = g[:, :hs] + gh[:, :hs]
                z = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                             acts[0], al[0], be[0])
                pre = g[:, hs:2 * hs] + gh[:, hs:2 * hs]
                rr = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                              acts[0], al[0], be[0])
                if linear_before_reset:
                    pre = g[:, 2 * hs:] + rr * gh[:, 2 * hs:]
                else:
                    pre = g[:, 2 * hs:] + torch.matmul(rr * h, r[2 * hs:].t()) + rb[2 * hs:]
                n = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                             acts[1], al[1], be[1])
                h_new = (1 - z) * n + z * h
            else:
                pre = g + gh
                h_new = _rnn_act(torch.clamp(pre, -clip, clip) if clip > 0 else pre,
                                 acts[0], al[0], be[0])
            if lens is not None:
                live = (lens > t).unsqueeze(1)
                h = torch.where(live, h_new, h)
                c = torch.where(live, c_new, c)
                out.append(torch.where(live, h_new, torch.zeros_like(h_new)))
            else:
                h, c = h_new, c_new
                out.append(h)
        if backwards:
            out.reverse()
        ys.append(torch.stack(out, 1))
        hn.append(h)
        cn.append(c)
    return torch.stack(ys, 2), torch.stack(hn, 1), torch.stack(cn, 1)


class _Recurrent(nn.Module):
    \"\"\"An ONNX LSTM/GRU/RNN that nn.LSTM/nn.GRU/nn.RNN cannot compute (peepholes, CNTK's
    reset-before GRU, other activations, clip, input_forget, a reverse run with
    sequence_lens): :func:`_recurrent` over the ONNX-layout parameters. Batch-first;
    returns Y [N, T, D, H] and the last states [N, D, H]. Trainable like nn.LSTM.\"\"\"

    def __init__(self, kind: str, input_size: int, hidden_size: int, directions: int,
                 reverse: bool, activations: list[str], alphas: list[float],
                 betas: list[float], clip: float, input_forget: bool,
                 linear_before_reset: bool, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
        self.kind = kind
        self.reverse = reverse
        self.activations = activations
        self.alphas = alphas
        self.betas = betas
        self.clip = clip
        self.input_forget = input_forget
        self.linear_before_reset = linear_before_reset
        self.weight_ih = nn.Parameter(torch.zeros(directions, gates * hidden_size, input_size,
                                                  dtype=dtype))
        self.weight_hh = nn.Parameter(torch.zeros(directions, gates * hidden_size,
                                                  hidden_size, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(directions, 2 * gates * hidden_size, dtype=dtype))
        self.peephole = nn.Parameter(torch.zeros(directions, 3 * hidden_size, dtype=dtype))

    def forward(self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor,
                lens: typing.Optional[torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return _recurrent(x, h0, c0, lens, self.weight_ih, self.weight_hh, self.bias,
                          self.peephole, self.kind, self.reverse, self.activations,
                          self.alphas, self.betas, self.clip, self.input_forget,
                          self.linear_before_reset)
'''

HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "_Recurrent": (RECURRENT, ("typing",)),
    "_resize_axis": (RESIZE_AXIS, ()),
    "_pool": (POOL, ()),
    "_max_roi_pool": (MAX_ROI_POOL, ("math",)),
}
