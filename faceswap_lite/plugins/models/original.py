"""The "Original" faceswap autoencoder, and its 128 px sibling: one shared encoder, a decoder per side.

Architecture (faceswap's ``plugins/train/model/original.py`` at 64 px, ``dfl_h128.py`` at 128 px;
channel counts shown at ``width = 1``; every count is multiplied by ``width``)::

    input N×3×R×R
    encoder   Conv 5×5 stride 2 + LeakyReLU(0.1), per width in E  ->  N×E[-1]×B×B
              flatten -> Linear(latent) -> Linear(B·B·D) -> reshape N×D×B×B
              upscale(512)                                       ->  N×512×2B×2B   (shared)
    decoder   upscale(c) for c in U                              ->  N×U[-1]×R×R   (one per side)
              Conv 5×5 -> 3 channels, sigmoid in float32         ->  N×3×R×R in (0, 1)

    upscale(c) = Conv 3×3 to 4c + LeakyReLU(0.1) + PixelShuffle(2)   (ICNR-initialised, no checkerboard)

    R     E                         B   D     latent   U
    64    128 256 512 1024          4   1024  1024     256 128 64        (faceswap Original)
    128   128 256 512 1024          8   512   512      512 256 128       (faceswap DFL-H128)
    256   64 128 256 512 1024       8   512   512      512 256 128 64

``forward(x, side)`` takes float32 (or autocast) N×3×R×R images in [0, 1] and returns float32 images
N×3×R×R: the final sigmoid runs in float32 even under autocast. Works in ``channels_last`` too.

``learn_mask`` (faceswap's option of that name) gives each decoder a second branch of the same
upscales ending in a 5×5 conv to one channel: ``forward_with_mask(x, side)`` then returns
``(face, mask)`` with the mask float32 N×1×R×R in (0, 1); without it the mask is ``None``.
``forward`` never runs the mask branch.

Example:
    >>> import torch
    >>> from faceswap_lite.plugins.models.original import Original
    >>> model = Original(width=1 / 32, latent=64, sides=("a", "b"))
    >>> model(torch.rand(2, 3, 64, 64), "b").shape
    torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from faceswap_lite.registry import check_choices, register_model

# resolution -> (encoder widths, bottleneck side, dense channels, default latent, decoder widths)
PRESETS: dict[int, tuple[tuple[int, ...], int, int, int, tuple[int, ...]]] = {
    64: ((128, 256, 512, 1024), 4, 1024, 1024, (256, 128, 64)),
    128: ((128, 256, 512, 1024), 8, 512, 512, (512, 256, 128)),
    256: ((64, 128, 256, 512, 1024), 8, 512, 512, (512, 256, 128, 64)),
}
Resolution = Literal[64, 128, 256]  # the keys of PRESETS
ENCODER_UPSCALE = 512
LEAKY = 0.1  # faceswap's LeakyReLU slope
MAX_WIDTH = 8.0  # 8× faceswap's channel counts: far beyond any GPU's memory already
MAX_LATENT = 1 << 16


def _scaled(channels: int, width: float) -> int:
    return max(2, int(round(channels * width)))


def _init_conv(conv: nn.Conv2d) -> None:
    nn.init.kaiming_uniform_(conv.weight, a=LEAKY, nonlinearity="leaky_relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class DownBlock(nn.Sequential):
    """Conv 5×5 stride 2 + LeakyReLU: N×Cin×H×W -> N×Cout×H/2×W/2."""

    def __init__(self, cin: int, cout: int) -> None:
        conv = nn.Conv2d(cin, cout, 5, stride=2, padding=2)
        _init_conv(conv)
        super().__init__(conv, nn.LeakyReLU(LEAKY))


class UpBlock(nn.Sequential):
    """Conv 3×3 to 4·Cout + LeakyReLU + PixelShuffle(2): N×Cin×H×W -> N×Cout×2H×2W.

    ICNR initialisation (Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution"):
    the four sub-pixel kernels of each output channel start equal.
    """

    def __init__(self, cin: int, cout: int) -> None:
        conv = nn.Conv2d(cin, cout * 4, 3, padding=1)
        base = nn.Conv2d(cin, cout, 3, padding=1)
        _init_conv(base)
        with torch.no_grad():
            conv.weight.copy_(base.weight.repeat_interleave(4, dim=0))
            nn.init.zeros_(conv.bias)
        super().__init__(conv, nn.LeakyReLU(LEAKY), nn.PixelShuffle(2))


class Encoder(nn.Module):
    """Shared encoder: N×3×R×R -> N×512w×2B×2B (see the module docstring)."""

    def __init__(self, widths: Sequence[int], bottleneck: int, dense_channels: int, latent: int,
                 up_channels: int) -> None:
        super().__init__()
        chans = [3, *widths]
        self.convs = nn.Sequential(*(DownBlock(a, b) for a, b in zip(chans[:-1], chans[1:])))
        self.bottleneck = bottleneck
        self.dense_channels = dense_channels
        self.to_latent = nn.Linear(widths[-1] * bottleneck * bottleneck, latent)
        self.from_latent = nn.Linear(latent, dense_channels * bottleneck * bottleneck)
        self.up = UpBlock(dense_channels, up_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        x = self.from_latent(self.to_latent(x.flatten(1)))
        x = x.view(x.shape[0], self.dense_channels, self.bottleneck, self.bottleneck)
        return self.up(x)


def _upscales_to(cin: int, widths: Sequence[int], cout: int) -> nn.Sequential:
    """UpBlocks through ``widths``, then a 5×5 conv to ``cout`` logits (the sigmoid is the model's)."""
    chans = [cin, *widths]
    ups = [UpBlock(a, b) for a, b in zip(chans[:-1], chans[1:])]  # before the conv: the old init order
    out = nn.Conv2d(widths[-1], cout, 5, padding=2)
    nn.init.xavier_uniform_(out.weight)
    nn.init.zeros_(out.bias)
    return nn.Sequential(*ups, out)


class Decoder(nn.Module):
    """One side's decoder: N×Cin×2B×2B -> N×3×R×R face logits, and N×1×R×R mask logits if it learns one."""

    def __init__(self, cin: int, widths: Sequence[int], learn_mask: bool = False) -> None:
        super().__init__()
        face = _upscales_to(cin, widths, 3)
        # The face branch keeps its old attribute names so checkpoints without a mask still load.
        self.ups = nn.Sequential(*face[:-1])
        self.out = face[-1]
        self.mask = _upscales_to(cin, widths, 1) if learn_mask else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.ups(x))

    def mask_logits(self, x: torch.Tensor) -> torch.Tensor | None:
        return None if self.mask is None else self.mask(x)


def check_sides(sides: Sequence[str]) -> tuple[str, ...]:
    """The trainer's side names as a tuple; a ValueError unless distinct, non-empty and dot-free."""
    sides = tuple(sides)
    if not sides or len(set(sides)) != len(sides) or not all(
            isinstance(s, str) and s and "." not in s for s in sides):
        raise ValueError(f"sides must be distinct non-empty names without dots, got {sides!r}")
    return sides


def check_input(model: nn.Module, x: torch.Tensor, side: str) -> None:
    """A ValueError unless ``x`` is N×3×R×R at the model's resolution and ``side`` one of its sides."""
    r = model.resolution
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != r or x.shape[3] != r:
        raise ValueError(f"{type(model).__name__} at {r} px expects N×3×{r}×{r} images, got {tuple(x.shape)}")
    if side not in model.sides:
        raise ValueError(f"unknown side {side!r}; this model has the sides {', '.join(model.sides)}")


@register_model("original")
class Original(nn.Module):
    """faceswap's Original autoencoder: shared encoder, one decoder per side (64/128/256 px presets).

    Args:
        resolution: input and output side in pixels: 64, 128 or 256 (the table in the module docstring).
        width: multiplier on every channel count (1.0 = the faceswap sizes; 1/16 makes tests fast).
        latent: size of the dense bottleneck; 0 = the preset's (1024 at 64 px, 512 above).
        learn_mask: give each decoder a mask branch (faceswap's ``learn_mask``); see ``forward_with_mask``.
        sides: the identities, one decoder each; set by the trainer from the face sets given.
    """

    def __init__(self, resolution: Resolution = 64, width: float = 1.0, latent: int = 0, learn_mask: bool = False,
                 sides: tuple = ("a",)) -> None:
        super().__init__()
        check_choices(Original, resolution=resolution)
        if not 0 < width <= MAX_WIDTH:
            raise ValueError(f"width must be in (0, {MAX_WIDTH}], got {width}")
        if not 0 <= latent <= MAX_LATENT:
            raise ValueError(f"latent must be in [0, {MAX_LATENT}] (0 = the preset's), got {latent}")
        sides = check_sides(sides)
        enc, bottleneck, dense, default_latent, dec = PRESETS[resolution]
        self.resolution = resolution
        self.sides = sides
        self.learns_mask = bool(learn_mask)
        enc_w = [_scaled(c, width) for c in enc]
        up = _scaled(ENCODER_UPSCALE, width)
        self.encoder = Encoder(enc_w, bottleneck, _scaled(dense, width), latent or default_latent, up)
        self.decoders = nn.ModuleDict({s: Decoder(up, [_scaled(c, width) for c in dec], self.learns_mask)
                                       for s in sides})

    def forward(self, x: torch.Tensor, side: str = "a") -> torch.Tensor:
        """``x``: N×3×R×R in [0, 1]; returns side ``side``'s reconstruction, float32 N×3×R×R in (0, 1)."""
        check_input(self, x, side)
        return torch.sigmoid(self.decoders[side](self.encoder(x)).float())

    def forward_with_mask(self, x: torch.Tensor, side: str = "a") -> tuple[torch.Tensor, torch.Tensor | None]:
        """Like :meth:`forward`, plus the predicted face mask float32 N×1×R×R (``None`` without ``learn_mask``)."""
        check_input(self, x, side)
        code = self.encoder(x)
        decoder = self.decoders[side]
        mask = decoder.mask_logits(code)
        return torch.sigmoid(decoder(code).float()), None if mask is None else torch.sigmoid(mask.float())


@register_model("face128")
class Face128(Original):
    """The 128 px preset of :class:`Original` (faceswap's DFL-H128 layout); same settings."""

    def __init__(self, resolution: Resolution = 128, width: float = 1.0, latent: int = 0,
                 learn_mask: bool = False, sides: tuple = ("a",)) -> None:
        super().__init__(resolution=resolution, width=width, latent=latent, learn_mask=learn_mask, sides=sides)
