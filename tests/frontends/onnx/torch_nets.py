"""Small PyTorch nets covering what torch.onnx writes for vision and transformer models,
exported at test time by the real exporters (TorchScript-based and dynamo).

Weights are random (seeded); BatchNorm statistics are calibrated on real activations
(a few batches in train mode, then eval), so folding them into convolutions is tested
with non-trivial numbers.
"""

from __future__ import annotations

import io
import math
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


class ConvNet(nn.Module):
    """Conv (groups, stride; dilation is in test_ops: CNTK's CPU runtime has none), BN,
    ReLU6, pools with ceil_mode and padding, x.view(x.size(0), -1), Linear, Softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
            nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(8),
            nn.LeakyReLU(0.1),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        )
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return torch.softmax(self.fc(x), dim=1)


class MobileBlock(nn.Module):
    """Depthwise conv, Hardswish/Hardsigmoid squeeze-excitation, residual, PReLU, ELU,
    ConvTranspose, nearest and bilinear Upsample, cat and chunk, InstanceNorm,
    reflection padding, global max pooling, flatten."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16),
                                  nn.Hardswish())
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.se_reduce = nn.Conv2d(16, 4, 1)
        self.se_expand = nn.Conv2d(4, 16, 1)
        self.prelu = nn.PReLU(16)
        self.up = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.norm = nn.InstanceNorm2d(8, affine=True)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(24, 8, 3)
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.dw(x)
        s = F.adaptive_avg_pool2d(y, 1)
        s = F.hardsigmoid(self.se_expand(F.relu(self.se_reduce(s))))
        x = x + y * s
        x = self.prelu(x)
        u = F.elu(self.norm(self.up(x)))
        a, b = torch.chunk(u, 2, dim=1)
        u = torch.cat([F.interpolate(a, scale_factor=0.5, mode="nearest"),
                       F.interpolate(b, size=(16, 16), mode="bilinear", align_corners=False)], 1)
        x = torch.cat([x, u], dim=1)
        x = F.selu(self.conv(self.pad(x)))
        x = F.adaptive_max_pool2d(x, 1).flatten(1)
        return torch.log_softmax(self.head(x), dim=-1)


class TinyTransformer(nn.Module):
    """One encoder block on [batch, tokens, features]: Linear on 3-D inputs (MatMul),
    multi-head attention written out (reshape with the batch from x.shape, transpose,
    batched matmul, scaling, softmax), LayerNorm, exact and tanh GELU, mean pooling."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp1 = nn.Linear(dim, 2 * dim)
        self.mlp2 = nn.Linear(2 * dim, dim)
        self.out = nn.Linear(dim, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        h = self.norm1(x)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        q = q.reshape(b, t, self.heads, c // self.heads).transpose(1, 2)
        k = k.reshape(b, t, self.heads, c // self.heads).transpose(1, 2)
        v = v.reshape(b, t, self.heads, c // self.heads).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(c // self.heads), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.proj(y)
        h = self.mlp1(self.norm2(x))
        x = x + self.mlp2(F.gelu(h[..., :16]).repeat(1, 1, 2) + F.gelu(h, approximate="tanh"))
        return self.out(x.mean(dim=1))


class MathNet(nn.Module):
    """Elementwise math and comparisons, Where, clamp, reductions, Sigmoid/Tanh, pow,
    sqrt/abs/exp, max over an axis, expand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        z = torch.where(y > 0.1, torch.sigmoid(y), torch.tanh(y) * 0.5)
        z = torch.clamp(z, -0.4, 0.6) + torch.sqrt(torch.abs(y) + 1.0) - torch.exp(-y * y)
        m = z.amax(dim=(2, 3), keepdim=True) + z.sum(dim=1, keepdim=True).mean(dim=(2, 3),
                                                                                keepdim=True)
        w = z * m + torch.pow(z, 2) - (y >= 0.0).float() * 0.25
        e = w.mean(dim=1, keepdim=True).expand(-1, 4, -1, -1)
        return torch.cat([w, e, torch.minimum(w, e)], dim=1)


class TinyViT(nn.Module):
    """Patch embedding, a class token expanded to the batch and concatenated
    (a batch-sized constant), position embedding, nn.TransformerEncoderLayer
    (nn.MultiheadAttention: reshapes of batch * heads), the class token's output."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, 4)
        self.cls = nn.Parameter(torch.randn(1, 1, 16))
        self.pos = nn.Parameter(torch.randn(1, 17, 16))
        self.enc = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.enc(x)[:, 0])


NETS = {
    "convnet": (ConvNet, (3, 16, 16)),
    "mobile": (MobileBlock, (3, 16, 16)),
    "transformer": (TinyTransformer, (6, 16)),
    "math": (MathNet, (3, 8, 8)),
    "vit": (TinyViT, (3, 16, 16)),
}


def build(name: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """The net with random weights and calibrated BatchNorm, in eval mode, and an example."""
    cls, shape = NETS[name]
    torch.manual_seed(seed)
    model = cls()
    if any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        model.train()
        with torch.no_grad():
            for _ in range(4):
                model(torch.randn(8, *shape) * 2 + 0.5)
    model.eval()
    return model, torch.randn(2, *shape)


def export(model: nn.Module, example: torch.Tensor, path: Path, *, dynamo: bool,
           opset: int | None = None, external_data: bool = False) -> Path:
    """torch.onnx.export with a dynamic batch axis named ``batch``; quiet."""
    kwargs: dict = {"input_names": ["input"], "output_names": ["output"]}
    if opset is not None:
        kwargs["opset_version"] = opset
    if dynamo:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=1024)},)
        kwargs["external_data"] = external_data
    else:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), \
            redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=dynamo, **kwargs)
    return path
