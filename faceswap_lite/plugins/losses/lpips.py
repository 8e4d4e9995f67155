"""LPIPS: learned perceptual image patch similarity (Zhang et al. 2018), as a per-pixel training loss.

Zhang, Isola, Efros, Shechtman, Wang, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric", CVPR 2018 (https://arxiv.org/abs/1801.03924), version 0.1 of the ``lpips`` package.

Both images go through a frozen ImageNet trunk (``lpips.pretrained_networks``: AlexNet, VGG16 or
SqueezeNet 1.1, exactly the package's networks). At each of its L tapped layers the features are
normalised to unit length over channels, their squared difference is weighted per channel by the
package's calibrated linear layer (``lpips.NetLinLayer``, 1×1 conv, shipped ``weights/v0.1/<net>.pth``)::

    d_l = lin_l((f̂_l(x) − f̂_l(y))²)          N×1×h_l×w_l,  f̂ = f / (‖f‖₂ + 1e-10)

- canonical per-item value (:meth:`LPIPS.per_item`, or ``spatial = false``): ``Σ_l mean_hw d_l``, shape N,
  equal to ``lpips.LPIPS(net=net, version="0.1")(x, y, normalize=True).flatten()`` for the same weights;
- map (``forward`` with the default ``spatial = true``): ``Σ_l upsample(d_l)`` to H×W (bilinear,
  ``align_corners=False``, as the package's ``spatial=True``), shape N×1×H×W, for masked training.
  Its mean is close to (here within 1e-3 relative), not exactly, the canonical value: bilinear
  upsampling does not preserve the mean at the borders.

Inputs are N×3×H×W in [0, 1] (mapped to [−1, 1] as the package's ``normalize=True``); H, W ≥ 31
for ``alex`` (its strided first conv and two 3×3/2 max-pools need that), ≥ 17 for ``squeeze``, ≥ 16
for ``vgg``. Everything runs in float32 whatever the autocast state (float64 when given float64).
Without gradients (validation, metrics) x and y go through the trunk in one batched call; when only
``pred`` needs a gradient (training) the target's features are computed without autograd instead,
which skips back-propagating through its half of the batch and keeping its activations (25-35%
faster on CPU, less memory). The module stays in eval mode with frozen weights, even inside a
model's ``.train()``.

Weights, offline. The trunk's ImageNet weights are torchvision's, read from its download cache
``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, by default
``~/.cache/torch/hub/checkpoints``) and downloaded there when missing: ``alexnet-owt-7be5be79.pth``,
``vgg16-397923af.pth``, ``squeezenet1_1-b8a52dc0.pth`` from https://download.pytorch.org/models/.
Without internet, copy that file into the folder, or point ``trunk_weights`` at any local copy
(a torchvision model state dict, an ``lpips`` trunk state dict ``slice1.0.weight ...``, or a whole
``lpips.LPIPS`` state dict). The linear layers come from the ``lpips`` wheel itself (no download);
``lin_weights`` points at another file in the package's format. When the trunk weights can be found
nowhere, construction raises :class:`~faceswap_lite.errors.PluginError` naming the file and folder.

Config::

    [[loss]]
    name = "lpips"
    weight = 0.1
    net = "alex"                # or "vgg", "squeeze"
    # trunk_weights = "/data/weights/alexnet-owt-7be5be79.pth"

Example (a random trunk, so that it runs offline; real use keeps ``pretrained_trunk``):
    >>> import torch
    >>> from faceswap_lite.plugins.losses.lpips import LPIPS
    >>> loss = LPIPS(net="alex", pretrained_trunk=False)
    >>> x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    >>> loss(x, y).shape, loss.per_item(x, y).shape
    (torch.Size([2, 1, 64, 64]), torch.Size([2]))
    >>> loss.per_item(x, x).abs().max().item()
    0.0
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from faceswap_lite.errors import PluginError
from faceswap_lite.losses import ITEM, MAP, as_float, no_autocast
from faceswap_lite.registry import check_choices, register_loss

log = logging.getLogger(__name__)

# Per net: the lpips trunk class, the channels of its tapped layers (lpips.LPIPS.chns) and the
# torchvision weight enum name it loads with pretrained=True (torchvision's legacy IMAGENET1K_V1).
# The lpips package (and torchvision under it) is imported when an LPIPS loss is built, not when the
# plugin registers: that import costs seconds and every other command would pay it.
NETS: dict[str, tuple[str, tuple[int, ...], str]] = {
    "alex": ("alexnet", (64, 192, 384, 256, 256), "AlexNet_Weights"),
    "vgg": ("vgg16", (64, 128, 256, 512, 512), "VGG16_Weights"),
    "squeeze": ("squeezenet", (64, 128, 256, 384, 384, 512, 512), "SqueezeNet1_1_Weights"),
}
Net = Literal["alex", "vgg", "squeeze"]  # the keys of NETS
# The smallest side each trunk accepts (its strided convs and 3×3/2 max-pools need at least one pixel).
MIN_SIZE = {"alex": 31, "vgg": 16, "squeeze": 17}
# lpips.ScalingLayer: ImageNet statistics expressed for inputs in [-1, 1] (lpips/lpips.py).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10  # lpips.normalize_tensor
TINY = 1e-30  # floor of the squared feature norm (a normal number in float32 and float64)
LIN_DIR = Path(next(iter(importlib.util.find_spec("lpips").submodule_search_locations))) / "weights" / "v0.1"


def _lpips():  # noqa: ANN202 - the lpips package, imported on first use
    import lpips

    return lpips

_TRUNK_KEY = re.compile(r"^(?:features|slice\d+)\.(\d+)\.(.+)$")  # torchvision / lpips trunk keys
_LIN_KEY = re.compile(r"^(?:lin|lins\.)(\d+)\.model\.\d+\.weight$")


def torchvision_weights(net: str) -> Any:
    """The torchvision weight entry lpips loads for ``net`` (has ``.url``, ``.get_state_dict``)."""
    import torchvision.models as tvm

    return getattr(tvm, NETS[net][2]).IMAGENET1K_V1


def trunk_cache_file(net: str) -> Path:
    """Where torchvision looks for (and downloads) ``net``'s ImageNet weights."""
    name = os.path.basename(torchvision_weights(net).url)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _strip(key: str) -> str:
    for prefix in ("module.", "_orig_mod.", "net."):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


def _load_file(path: str, what: str) -> dict[str, torch.Tensor]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise PluginError(f"lpips: {what} file {str(p)!r} does not exist")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PluginError(f"lpips: cannot read {what} file {str(p)!r}: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:300]}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PluginError(f"lpips: {what} file {str(p)!r} holds a {type(state).__name__}, not a state dict")
    return state


def _download_trunk(net: str) -> dict[str, torch.Tensor]:
    """torchvision's own path: its cache folder first, then a download into it; a clear error otherwise."""
    weights = torchvision_weights(net)
    cached = trunk_cache_file(net)
    present = cached.is_file()
    try:
        return weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except Exception as exc:
        why = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        if present:
            msg = (f"lpips: cannot load the {net} trunk weights {str(cached)!r} ({why}); delete the file to "
                   f"download it again, or set trunk_weights to a good copy")
        else:
            msg = (f"lpips: the ImageNet weights of the {net} trunk are missing: {cached.name} is not in "
                   f"{cached.parent} and its download from {weights.url} failed ({why}). Copy {cached.name} "
                   f"into {cached.parent} (torch.hub.get_dir()/checkpoints; set TORCH_HOME to use another "
                   f"folder), or set trunk_weights = \"/path/to/{cached.name}\" to load a local copy")
        raise PluginError(msg) from None


def _trunk_state(trunk: nn.Module, given: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Map a torchvision (``features.i.*``) or lpips (``slice_k.i.*``) state dict onto ``trunk``'s keys."""
    by_index: dict[tuple[str, str], torch.Tensor] = {}
    for key, value in given.items():
        m = _TRUNK_KEY.match(_strip(key))
        if m and isinstance(value, torch.Tensor):
            by_index[(m.group(1), m.group(2))] = value
    out: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for key in trunk.state_dict():
        m = _TRUNK_KEY.match(key)
        assert m is not None, key
        value = by_index.get((m.group(1), m.group(2)))
        if value is None:
            missing.append(f"features.{m.group(1)}.{m.group(2)}")
        else:
            out[key] = value
    if missing:
        raise PluginError(f"lpips: {source} is not a trunk state dict for this net: no "
                          f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} "
                          f"(expected torchvision 'features.i.weight' or lpips 'slice_k.i.weight' keys)")
    return out


def _lin_state(given: dict[str, torch.Tensor], n_layers: int, source: str) -> dict[str, torch.Tensor]:
    """Map lpips linear-layer keys (``lin_k.model.1.weight``, with or without dropout) onto ours."""
    found: dict[int, torch.Tensor] = {}
    for key, value in given.items():
        m = _LIN_KEY.match(_strip(key))
        if m and isinstance(value, torch.Tensor):
            found[int(m.group(1))] = value
    missing = [k for k in range(n_layers) if k not in found]
    if missing:
        raise PluginError(f"lpips: {source} has no linear layer(s) {missing} "
                          f"(expected keys like 'lin0.model.1.weight', as lpips/weights/v0.1/*.pth)")
    return {f"lins.{k}.model.0.weight": found[k] for k in range(n_layers)}


def _norm(f: torch.Tensor) -> torch.Tensor:
    """‖f‖₂ over channels with a finite gradient at f = 0 (√ has an infinite one at 0, giving NaN).

    The clamp changes nothing the result can show: below 1e-30 the norm is swamped by EPS = 1e-10.
    (``torch.linalg.vector_norm`` is also safe at 0 but its backward is twice as slow here.)
    """
    return torch.sum(f * f, dim=1, keepdim=True).clamp_min(TINY).sqrt()


class _Core(nn.Module):
    """Scaling, trunk and linear layers: ``forward(pred, target)`` (N×3×H×W in [0, 1]) → per-layer maps."""

    def __init__(self, trunk: nn.Module, chns: tuple[int, ...]) -> None:
        super().__init__()
        self.net = trunk
        self.lins = nn.ModuleList(_lpips().NetLinLayer(c, use_dropout=False) for c in chns)
        # float32 constants like lpips.ScalingLayer's, cast to the compute dtype.
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None])

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The trunk's tapped layers for images in [0, 1], each normalised to unit length over channels."""
        images = (2 * images - 1 - self.shift) / self.scale  # normalize=True, then lpips.ScalingLayer
        return [f / (_norm(f) + EPS) for f in self.net(images)]  # lpips.normalize_tensor

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        if torch.is_grad_enabled() and pred.requires_grad and not target.requires_grad:
            # Training: one batched trunk call would also back-propagate through the target's half
            # (conv input gradients are computed for the whole batch) and keep its activations;
            # measured 25-35% slower on CPU than the target's features without autograd.
            fx = self.features(pred)
            with torch.no_grad():
                fy = self.features(target)
        else:  # evaluation (no gradient), or both need one: x and y in one batched trunk call
            n = pred.shape[0]
            both = self.features(torch.cat([pred, target]))
            fx, fy = [f[:n] for f in both], [f[n:] for f in both]
        return [lin((a - b) ** 2) for a, b, lin in zip(fx, fy, self.lins)]


@register_loss("lpips")
class LPIPS(nn.Module):
    """LPIPS v0.1 (Zhang et al. 2018): map N×1×H×W (``spatial``) or per-item N; inputs N×3×H×W in [0, 1].

    Args:
        net: trunk: ``"alex"`` (default; the package's default, fastest and best as a metric),
            ``"vgg"`` (the package's README: closer to the traditional perceptual loss when
            back-propagated through; some 20× the compute) or ``"squeeze"`` (smallest).
        spatial: True: ``forward`` returns the per-pixel map N×1×H×W (masked training); False: the
            canonical per-item value N (LossMix then masks the inputs).
        trunk_weights: path to a local trunk state dict; empty: torchvision's ImageNet weights from
            its download cache (``torch.hub.get_dir()/checkpoints``), downloaded when missing.
        lin_weights: path to lpips linear-layer weights; empty: the v0.1 file shipped in ``lpips``.
        pretrained_trunk: False gives a randomly initialised trunk (torchvision's init, from the
            global torch RNG) for tests and offline examples; it measures nothing perceptual.
    """

    output = MAP  # the default; ``spatial = false`` makes an instance per-item

    def __init__(self, net: Net = "alex", spatial: bool = True, trunk_weights: str = "",
                 lin_weights: str = "", pretrained_trunk: bool = True) -> None:
        super().__init__()
        check_choices(LPIPS, net=net)
        if trunk_weights and not pretrained_trunk:
            raise ValueError("set either trunk_weights or pretrained_trunk = false, not both")
        self.net_name = net
        self.spatial = bool(spatial)
        self.output = MAP if self.spatial else ITEM
        trunk_name, chns, _ = NETS[net]
        from lpips import pretrained_networks

        trunk_cls = getattr(pretrained_networks, trunk_name)

        lin_source = lin_weights or str(LIN_DIR / f"{net}.pth")
        lin_state = _lin_state(_load_file(lin_source, "linear-layer weights"), len(chns), lin_source)
        given: dict[str, torch.Tensor] | None = None
        source = "random init (pretrained_trunk = false)"
        if trunk_weights:
            given, source = _load_file(trunk_weights, "trunk weights"), repr(trunk_weights)
        elif pretrained_trunk:
            given, source = _download_trunk(net), repr(str(trunk_cache_file(net)))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's deprecation of lpips's pretrained= argument
            if given is None:
                trunk = trunk_cls(pretrained=False, requires_grad=False)
            else:
                with torch.device("meta"):  # weights come from `given`: skip the (slow) random init
                    trunk = trunk_cls(pretrained=False, requires_grad=False)
                trunk = trunk.to_empty(device="cpu")
        self.core = _Core(trunk, chns)
        try:
            if given is not None:
                self.core.net.load_state_dict(_trunk_state(trunk, given, source))
            self.core.lins.load_state_dict({k[len("lins."):]: v for k, v in lin_state.items()})
        except RuntimeError as exc:  # shape mismatch: weights of another net
            raise PluginError(f"lpips: weights do not fit the {net} net: {' '.join(str(exc).split())[:300]}"
                              ) from None
        self.core.requires_grad_(False)
        self.train(False)
        log.debug("lpips %s: trunk from %s, linear layers from %s", net, source, lin_source)

    @classmethod
    def available(cls, settings: Mapping[str, Any]) -> str | None:
        """Why ``settings`` need a download here (the loss hook of :mod:`faceswap_lite.losses.base`):
        the trunk's ImageNet weights are not in torchvision's cache; None when nothing is missing."""
        if settings.get("trunk_weights") or not settings.get("pretrained_trunk", True):
            return None  # a local file, or a random trunk
        net = settings.get("net", "alex")
        if net not in NETS:
            return None  # building it names the bad setting
        cached = trunk_cache_file(net)
        if cached.is_file():
            return None
        trunk = NETS[net][2].removesuffix("_Weights")
        return (f"its {trunk} ImageNet weights {cached.name} are not in {cached.parent}; copy the file there "
                "(or set TORCH_HOME)")

    def train(self, mode: bool = True) -> LPIPS:
        """Always eval: the trunk and linear layers are fixed (``mode`` is ignored)."""
        return super().train(False)

    def extra_repr(self) -> str:
        return f"net={self.net_name!r}, spatial={self.spatial}"

    def layer_maps(self, pred: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer weighted distances ``d_l``, N×1×h_l×w_l each, in float32 (float64 for float64)."""
        if pred.shape != target.shape or pred.dim() != 4 or pred.shape[1] != 3:
            raise ValueError(f"lpips needs two N×3×H×W images of the same shape, got {tuple(pred.shape)} "
                             f"and {tuple(target.shape)}")
        if min(pred.shape[-2:]) < MIN_SIZE[self.net_name]:
            raise ValueError(f"lpips net {self.net_name!r} needs images of at least {MIN_SIZE[self.net_name]}×"
                             f"{MIN_SIZE[self.net_name]} pixels, got {tuple(pred.shape[-2:])}")
        with no_autocast(pred.device):
            pred, target = as_float(pred, target)
            ref = self.core.shift
            if ref.dtype == pred.dtype and ref.device == pred.device:
                return self.core(pred, target)
            # Another dtype (float64) or device than the stored weights: run on cast copies.
            state = {k: v.to(device=pred.device, dtype=pred.dtype)
                     for k, v in [*self.core.named_parameters(), *self.core.named_buffers()]}
            return functional_call(self.core, state, (pred, target))

    def per_item(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The canonical LPIPS per item, shape N: ``lpips.LPIPS(...)(pred, target, normalize=True)``."""
        maps = self.layer_maps(pred, target)
        out = maps[0].mean(dim=(1, 2, 3))
        for m in maps[1:]:  # the package's order of summation
            out = out + m.mean(dim=(1, 2, 3))
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Map N×1×H×W (``spatial``, the default) or per-item N."""
        if not self.spatial:
            return self.per_item(pred, target)
        maps = self.layer_maps(pred, target)
        size = pred.shape[-2:]
        out = F.interpolate(maps[0], size=size, mode="bilinear", align_corners=False)
        for m in maps[1:]:
            out = out + F.interpolate(m, size=size, mode="bilinear", align_corners=False)
        return out
