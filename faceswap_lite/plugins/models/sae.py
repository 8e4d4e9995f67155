"""SAE: DeepFaceLab's SAEHD autoencoder (layouts ``df`` and ``liae``), with a learned face mask.

Written from the published description of DeepFaceLab's SAEHD (``models/Model_SAEHD/Model.py`` and
``core/leras/archis/DeepFakeArchi.py``); the blocks, widths and options follow it. R = resolution,
L = R/16 (R/32 with ``double_res``), e/a/d/m = ``e_dims``/``ae_dims``/``d_dims``/``d_mask_dims``::

    encoder   Down(e) Down(2e) Down(4e) Down(8e)        N×3×R×R -> N×8e×R/16×R/16, flattened
              [pixel norm of the flattened code]        (``pixel_norm``, SAEHD's "-u")
    inter     Linear(a) -> Linear(L·L·c) -> N×c×L×L -> Up(c)            -> N×c×2L×2L
    decoder   Up(8d) Res Up(4d) Res Up(2d) Res -> Conv 1×1 to 3, sigmoid  -> N×3×R×R
              mask branch: Up(8m) Up(4m) Up(2m) -> Conv 1×1 to 1, sigmoid -> N×1×R×R (``learn_mask``)

    Down(c) = Conv 5×5 stride 2 + LeakyReLU(0.1)
    Up(c)   = Conv 3×3 to 4c + LeakyReLU(0.1) + depth-to-space(2)   (ICNR-initialised)
    Res     = x -> LeakyReLU(0.2)(x + Conv 3×3(LeakyReLU(0.2)(Conv 3×3(x))))

Down and Up are Original's blocks (He-initialised; Up with ICNR, so no checkerboard at the start);
the dense layers, residual and output convs are Glorot-uniform, as SAEHD's.

``double_res`` (SAEHD's "-d") halves the whole pipeline's working size at almost the same cost: the
dense code is R/32 wide, the decoder ends at R/2, and its output is four 3×3 convolutions put
side by side by depth-to-space(2) into the full R×R face; the mask branch gets one more Up(m).
It needs R to be a multiple of 32.

Layouts:

* ``df``: one inter (c = a); one decoder per side. Side S's face is ``decoder_S(inter(enc(x)))``; the
  swap S->T runs S's face through T's decoder, as in Original.
* ``liae``: one inter_AB shared by every side, one decoder (c = 2a: it takes two codes side by
  side), and one inter per other side, ``inter_dst`` (DeepFaceLab's inter_B). Which side is which:
  the **last side** (``-B`` in a two-side run: the identity a swap puts in, what ``convert`` swaps to
  by default; DeepFaceLab's "src") is rendered from ``inter_AB‖inter_AB``; every other side S
  (``-A``: the faces being replaced, DeepFaceLab's "dst") from ``inter_dst_S‖inter_AB``.
  ``forward(x, side)`` renders ``x`` as ``side`` whatever the face's origin, so the swap A->B (an A
  face rendered as B) is ``decoder(inter_AB(enc(x))‖inter_AB(enc(x)))``, SAEHD's swap, which never
  goes through inter_dst. B->A (a B face through inter_dst_A, which only ever saw A faces) is
  defined but is not a swap SAEHD makes. A one-side model has inter_AB only.

Model contract (also Original's): ``forward(x, side)`` returns the float32 face N×3×R×R in (0, 1);
``forward_with_mask(x, side)`` returns ``(face, mask)`` with the mask float32 N×1×R×R in (0, 1), or
``None`` when ``learns_mask`` is false. Sigmoids run in float32 even under autocast; channels_last
works. Every parameter is used when all sides run with ``forward_with_mask`` in one step (what DDP
with ``find_unused_parameters=False`` needs); plain ``forward`` skips the mask branch.

Example:
    >>> import torch
    >>> from faceswap_lite.plugins.models.sae import SAE
    >>> model = SAE(64, "liae", ae_dims=16, e_dims=4, d_dims=4, d_mask_dims=4, sides=("a", "b"))
    >>> face, mask = model.forward_with_mask(torch.rand(2, 3, 64, 64), "a")
    >>> face.shape, mask.shape
    (torch.Size([2, 3, 64, 64]), torch.Size([2, 1, 64, 64]))
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from faceswap_lite.registry import check_choices, register_model

from .original import DownBlock, UpBlock, check_input, check_sides

Arch = Literal["df", "liae"]
MIN_RES, MAX_RES = 64, 512
# SAEHD's own UI ranges are ae 32-1024 and e/d/mask 16-256; the lower bounds here go down to what a
# CPU test or benchmark needs (a few hundred steps on two cores).
AE_RANGE = (4, 1024)
DIMS_RANGE = (2, 256)
RES_LEAKY = 0.2  # SAEHD's residual-block slope (the up/down blocks use 0.1)


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    """A same-size conv, Glorot-uniform as SAEHD's (TensorFlow's default): He init's larger gain,
    repeated through the residual sums, starts the decoder at twice the activation spread."""
    conv = nn.Conv2d(cin, cout, k, padding=k // 2)
    nn.init.xavier_uniform_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class ResidualBlock(nn.Module):
    """SAEHD's residual block: two 3×3 convs, the input added before the last activation."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = _conv(ch, ch, 3)
        self.conv2 = _conv(ch, ch, 3)
        self.act = nn.LeakyReLU(RES_LEAKY)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.act(self.conv1(x))))


class Encoder(nn.Module):
    """N×3×R×R -> N×(8e·R/16·R/16) flattened code, pixel-normalised when asked."""

    def __init__(self, e_dims: int, pixel_norm: bool) -> None:
        super().__init__()
        chans = [3] + [e_dims * 2 ** i for i in range(4)]
        self.downs = nn.Sequential(*(DownBlock(a, b) for a, b in zip(chans[:-1], chans[1:])))
        self.pixel_norm = pixel_norm
        self.out_ch = chans[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downs(x).flatten(1)
        if self.pixel_norm:  # the norm in float32: a bf16 mean of squares over ~10^4 values drifts
            x = x * torch.rsqrt(x.float().square().mean(1, keepdim=True) + 1e-6).to(x.dtype)
        return x


class Inter(nn.Module):
    """Flattened code -> Linear(ae) -> Linear(L·L·c) -> N×c×L×L -> Up(c): N×c×2L×2L."""

    def __init__(self, in_features: int, ae_dims: int, out_ch: int, lowest: int) -> None:
        super().__init__()
        self.dense1 = nn.Linear(in_features, ae_dims)
        self.dense2 = nn.Linear(ae_dims, lowest * lowest * out_ch)
        for dense in (self.dense1, self.dense2):
            nn.init.xavier_uniform_(dense.weight)
            nn.init.zeros_(dense.bias)
        self.up = UpBlock(out_ch, out_ch)
        self.shape = (out_ch, lowest, lowest)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense2(self.dense1(z))
        return self.up(x.view(x.shape[0], *self.shape))


class Decoder(nn.Module):
    """N×cin×2L×2L -> face logits N×3×R×R and, with a mask branch, mask logits N×1×R×R."""

    def __init__(self, cin: int, d_dims: int, d_mask_dims: int, learn_mask: bool, double_res: bool) -> None:
        super().__init__()
        widths = [cin, 8 * d_dims, 4 * d_dims, 2 * d_dims]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [UpBlock(a, b), ResidualBlock(b)]
        self.body = nn.Sequential(*layers)
        # -d: four 3×3 heads interleaved by depth-to-space make the R×R face from an R/2 map.
        self.out = (nn.Sequential(_conv(2 * d_dims, 12, 3), nn.PixelShuffle(2)) if double_res
                    else _conv(2 * d_dims, 3, 1))
        self.mask = None
        if learn_mask:
            m = [cin, 8 * d_mask_dims, 4 * d_mask_dims, 2 * d_mask_dims] + ([d_mask_dims] if double_res else [])
            self.mask = nn.Sequential(*(UpBlock(a, b) for a, b in zip(m[:-1], m[1:])), _conv(m[-1], 1, 1))

    def forward(self, code: torch.Tensor, with_mask: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        face = self.out(self.body(code))
        mask = self.mask(code) if with_mask and self.mask is not None else None
        return face, mask


def _check_range(name: str, value: int, bounds: tuple[int, int]) -> None:
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {value!r}")


def _check_resolution(resolution: int, double_res: bool) -> None:
    step = 32 if double_res else 16
    if (isinstance(resolution, bool) or not isinstance(resolution, int)
            or not MIN_RES <= resolution <= MAX_RES or resolution % step):
        why = " (double_res works at half size; set double_res = false for a multiple of 16)" if double_res else ""
        raise ValueError(f"resolution must be a multiple of {step} in [{MIN_RES}, {MAX_RES}]{why}, "
                         f"got {resolution!r}")


@register_model("sae")
class SAE(nn.Module):
    """DeepFaceLab's SAEHD autoencoder (layout df or liae) with a learned face mask, 64-512 px.

    The layouts, options and the meaning of the sides are in the module docstring.

    Args:
        resolution: input and output side in pixels, a multiple of 16 (of 32 with ``double_res``) in 64-512.
        arch: "df" (a decoder per side) or "liae" (inter_AB, an inter_dst per side but the last, one decoder).
        ae_dims: width of the dense bottleneck (SAEHD's default 256).
        e_dims: encoder base width; the encoder's four layers have e, 2e, 4e, 8e channels.
        d_dims: decoder base width; its three upscales have 8d, 4d, 2d channels.
        d_mask_dims: mask branch base width (SAEHD: about d_dims / 3).
        learn_mask: build and train the mask branch (``forward_with_mask`` then returns a mask).
        pixel_norm: SAEHD's "-u": normalise the flattened encoder code to unit RMS per face.
        double_res: SAEHD's "-d": the network works at R/2 and a depth-to-space head makes the R×R face.
        sides: the identities, set by the trainer from the face sets given (the last is liae's swap target).
    """

    def __init__(self, resolution: int = 128, arch: Arch = "liae", ae_dims: int = 256, e_dims: int = 64,
                 d_dims: int = 64, d_mask_dims: int = 22, learn_mask: bool = True, pixel_norm: bool = True,
                 double_res: bool = True, sides: tuple = ("a",)) -> None:
        super().__init__()
        check_choices(SAE, arch=arch)
        _check_resolution(resolution, double_res)
        _check_range("ae_dims", ae_dims, AE_RANGE)
        for name, value in (("e_dims", e_dims), ("d_dims", d_dims), ("d_mask_dims", d_mask_dims)):
            _check_range(name, value, DIMS_RANGE)
        self.sides = check_sides(sides)
        self.resolution, self.arch, self.learns_mask = resolution, arch, bool(learn_mask)
        lowest = resolution // (32 if double_res else 16)
        self.encoder = Encoder(e_dims, pixel_norm)
        code = self.encoder.out_ch * (resolution // 16) ** 2

        def decoder(cin: int) -> Decoder:
            return Decoder(cin, d_dims, d_mask_dims, self.learns_mask, double_res)

        if arch == "df":
            self.inter = Inter(code, ae_dims, ae_dims, lowest)
            self.decoders = nn.ModuleDict({s: decoder(ae_dims) for s in self.sides})
        else:
            self.inter_ab = Inter(code, ae_dims, 2 * ae_dims, lowest)
            self.inter_dst = nn.ModuleDict({s: Inter(code, ae_dims, 2 * ae_dims, lowest) for s in self.sides[:-1]})
            self.decoder = decoder(4 * ae_dims)

    def _decode(self, x: torch.Tensor, side: str, with_mask: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        check_input(self, x, side)
        z = self.encoder(x)
        if self.arch == "df":
            return self.decoders[side](self.inter(z), with_mask)
        ab = self.inter_ab(z)
        other = ab if side == self.sides[-1] else self.inter_dst[side](z)
        return self.decoder(torch.cat([other, ab], dim=1), with_mask)

    def forward(self, x: torch.Tensor, side: str = "a") -> torch.Tensor:
        """``x``: N×3×R×R in [0, 1]; returns ``x`` rendered as ``side``, float32 N×3×R×R in (0, 1)."""
        face, _ = self._decode(x, side, with_mask=False)
        return torch.sigmoid(face.float())

    def forward_with_mask(self, x: torch.Tensor, side: str = "a") -> tuple[torch.Tensor, torch.Tensor | None]:
        """Like :meth:`forward`, plus the predicted face mask float32 N×1×R×R (``None`` without ``learn_mask``)."""
        face, mask = self._decode(x, side, with_mask=True)
        return torch.sigmoid(face.float()), None if mask is None else torch.sigmoid(mask.float())
