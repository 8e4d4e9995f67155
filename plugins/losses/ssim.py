"""SSIM loss: 1 − structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004).

Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error
visibility to structural similarity", IEEE Trans. Image Processing 13(4):600–612, 2004,
doi:10.1109/TIP.2003.819861.

With a Gaussian window w (``window_size`` taps, std ``sigma``, normalised to sum 1 in the compute
dtype), C1 = (k1·L)², C2 = (k2·L)², L = ``data_range``, per channel:

    μx = w⊛x,  σx² = w⊛x² − μx²,  σxy = w⊛xy − μxμy
    SSIM = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))

Shapes: ``SSIM()(pred, target)`` takes N×C×H×W images in [0, L] and returns the per-pixel loss
map 1 − SSIM, N×C×H×W with ``padding="reflect"`` (same size, reflect-padded borders: kornia
``padding="same"``, torchmetrics) or N×C×(H−K+1)×(W−K+1) with ``padding="valid"`` (MATLAB ``ssim``,
piq with ``downsample=False``, pytorch-msssim with ``data_range=1``). The canonical value of an
item is the mean of its map: :func:`ssim_per_item` returns it (as SSIM, not as a loss).

How it is computed (same numbers as the definition, faster and safer than the peers):

- the window is separable: two 1-D passes of K taps instead of one of K² taps;
- the statistics are filtered together, in one grouped convolution per direction, in a
  channels-last layout (moments × rows × columns × images·channels) that oneDNN filters without
  the blocking copies an N×3×H×W image costs it;
- four moments instead of five: x, y, xy and (x − y)². Since σx² + σy² = 2σxy + Var(x − y), the
  denominator is (2σxy + C2) + Var(x − y) with Var(x − y) = w⊛(x − y)² − (μx − μy)² clamped at 0.
  That variance is the one float32 cancellation can push below 0 (it is small exactly where images
  agree); clamping it keeps cs ≤ 1, and identical images give exactly 0 (clamping σx², σy²
  separately does not: a flat patch then scores up to 3e-4 from its own copy);
- the gradient is written out (an ``autograd.Function``): the backward pass filters three
  coefficient maps with the adjoint window, instead of autograd's trail of 30-odd saved
  intermediates;
- large images are processed in bands of rows sized to stay in the CPU cache; the backward pass
  recomputes its band's statistics instead of storing them.

Statistics are computed in float32 (float64 for float64 input) whatever the autocast state.

Example:
    >>> import torch
    >>> from faceswap_lite.plugins.losses.ssim import SSIM, ssim_per_item
    >>> x = torch.rand(2, 3, 32, 32)
    >>> SSIM()(x, x).abs().max().item()
    0.0
    >>> SSIM(padding="valid")(x, x * 0.5).shape
    torch.Size([2, 3, 22, 22])
    >>> ssim_per_item(x, x).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from faceswap_lite.losses import MAP, as_float, no_autocast
from faceswap_lite.losses.filters import gaussian_kernel1d
from faceswap_lite.registry import register_loss

# Wang et al. 2004, section III.C (and their reference MATLAB ssim_index.m): an 11×11 Gaussian
# window with standard deviation 1.5, K1 = 0.01, K2 = 0.03.
WINDOW_SIZE = 11
SIGMA = 1.5
K1 = 0.01
K2 = 0.03
PADDINGS = ("valid", "reflect")

# Rows per band: a band's working set (input moments, filtered moments and the temporaries of the
# formula, about 16 maps of rows × width × images·channels floats) is kept near this many bytes so it
# stays in the L2/L3 cache; measured on an AMD EPYC (tools/bench_losses.py).
_BAND_BYTES = 6 << 20
_MIN_BAND_ROWS = 16
_MAPS_PER_ROW = 16
# Images·channels filtered together: the channels-last depthwise convolution vectorises over them.
_MAX_CHANNELS = 48


def check_ssim_settings(window_size: int, sigma: float, k1: float, k2: float, data_range: float) -> None:
    """Raise ValueError naming the first invalid SSIM setting."""
    if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd integer (11 in Wang et al.), got {window_size!r}")
    if not (isinstance(sigma, int | float) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number (1.5 in Wang et al.), got {sigma!r}")
    for name, value in (("k1", k1), ("k2", k2)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number (k1 = 0.01, k2 = 0.03 in Wang et al.), got {value!r}")
    if not (isinstance(data_range, int | float) and math.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a positive number (1.0 for images in [0, 1]), got {data_range!r}")


def _check_images(x: torch.Tensor, y: torch.Tensor, min_side: int, what: str) -> None:
    if x.shape != y.shape:
        raise ValueError(f"pred {tuple(x.shape)} and target {tuple(y.shape)} differ")
    if x.dim() != 4:
        raise ValueError(f"expected N×C×H×W images, got shape {tuple(x.shape)}")
    if min(x.shape[-2:]) < min_side:
        raise ValueError(f"images of {x.shape[-2]}×{x.shape[-1]} px are too small for {what}: "
                         f"the short side must be at least {min_side} px")


def _bands(n: int, c: int, rows: int, width: int) -> list[tuple[int, int, int, int]]:
    """Split ``rows`` output rows of ``n`` images into (n0, n1, r0, r1) tiles that fit the cache."""
    nb = max(1, min(n, _MAX_CHANNELS // c))
    row_bytes = _MAPS_PER_ROW * width * nb * c * 4
    step = max(_MIN_BAND_ROWS, _BAND_BYTES // max(row_bytes, 1))
    step = min(step, rows)
    if step < rows:  # even bands: no thin last band
        count = -(-rows // step)
        step = -(-rows // count)
    return [(n0, min(n, n0 + nb), r0, min(rows, r0 + step)) for n0 in range(0, n, nb) for r0 in range(0, rows, step)]


def _filter(stack: torch.Tensor, kh: torch.Tensor, kw: torch.Tensor, pad_w: int) -> torch.Tensor:
    """Filter a (B, rows, cols, ch) contiguous stack along rows (valid), then cols (pad_w zeros)."""
    ch = stack.shape[-1]
    v = stack.permute(0, 3, 1, 2)  # a channels-last (B, ch, rows, cols) view: no copy
    v = F.conv2d(v, kh, groups=ch)
    v = F.conv2d(v, kw, padding=(0, pad_w), groups=ch)
    return v.permute(0, 2, 3, 1).contiguous()  # a no-op when the convolution kept channels-last


def _moment_stack(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(4, rows, cols, nb·c) stack of x, y, xy, (x − y)² from N×C×rows×cols images (transposing copy)."""
    nb, c, rows, cols = x.shape
    p = x.new_empty((4, rows, cols, nb, c))
    p[0].copy_(x.permute(2, 3, 0, 1))
    p[1].copy_(y.permute(2, 3, 0, 1))
    torch.mul(p[0], p[1], out=p[2])
    torch.sub(p[0], p[1], out=p[3])
    p[3].mul_(p[3])
    return p.view(4, rows, cols, nb * c)


class _Terms:
    """The SSIM terms of one band, from its filtered moments (buffers are reused in place)."""

    def __init__(self, m: torch.Tensor, c1: float, c2: float, want_ssim: bool) -> None:
        mx, my, exy, edd = m.unbind(0)
        self.mx, self.my = mx, my
        q = torch.sub(mx, my)
        q.mul_(q)  # (μx − μy)²
        mxy = torch.mul(mx, my)
        a2 = exy.sub_(mxy).mul_(2).add_(c2)  # 2σxy + C2
        b2 = edd.sub_(q).clamp_(min=0).add_(a2)  # Var(x − y) ≥ 0, + 2σxy + C2 = σx² + σy² + C2
        self.a2, self.b2 = a2, b2
        if want_ssim:
            a1 = mxy.mul_(2).add_(c1)  # 2μxμy + C1
            self.a1 = a1
            self.b1 = q.add_(a1)  # (μx − μy)² + 2μxμy + C1 = μx² + μy² + C1
            self.den = torch.mul(self.b1, b2)
            self.num = torch.mul(a1, a2)

    def value(self, want_ssim: bool, as_loss: bool) -> torch.Tensor:
        """SSIM or cs map, or 1 − it."""
        if want_ssim:
            if as_loss:
                return torch.sub(self.den, self.num).div_(self.den)  # exactly 0 when num == den
            return torch.div(self.num, self.den)
        if as_loss:
            return torch.sub(self.b2, self.a2).div_(self.b2)
        return torch.div(self.a2, self.b2)

    def coefficients(self, g: torch.Tensor, sign: float, want_ssim: bool, grad_x: bool, grad_y: bool,
                     out: torch.Tensor) -> None:
        """Write ∂value/∂(μx, [μy,] E[xy], E[(x−y)²]) · g / 2 into ``out`` (the factor 2 goes to the window).

        For SSIM (D = B1·B2, S = A1·A2/D, t = g/D):
            ∂/∂E[xy] = 2t(A1 − S·B1),  ∂/∂E[(x−y)²] = −t·S·B1,
            ∂/∂μx = 2t(μy(A2 − A1) + μx·S·(B1 − B2)),  ∂/∂μy likewise with μx ↔ μy.
        For cs = A2/B2 (t = g/B2): 2t(1 − cs), −t·cs, 2t(μx·cs − μy), 2t(μy·cs − μx).
        The clamp of Var(x − y) passes the gradient through (its true value is ≥ 0).
        """
        k = 0
        qx = qy = None
        if grad_x:
            qx, k = out[k], k + 1
        if grad_y:
            qy, k = out[k], k + 1
        qxy, qdd = out[k], out[k + 1]
        if want_ssim:
            t = torch.div(g, self.den)
            if sign < 0:
                t.neg_()
            ts = torch.div(self.num, self.den).mul_(t)  # t·S
            torch.mul(ts, self.b1, out=qdd).neg_()  # −t·S·B1
            torch.mul(t, self.a1, out=qxy).add_(qdd)  # t·A1 − t·S·B1
            e = torch.sub(self.a2, self.a1).mul_(t)  # t(A2 − A1)
            f = torch.sub(self.b1, self.b2).mul_(ts)  # t·S(B1 − B2)
            if qx is not None:
                torch.mul(self.my, e, out=qx).addcmul_(self.mx, f)
            if qy is not None:
                torch.mul(self.mx, e, out=qy).addcmul_(self.my, f)
        else:
            t = torch.div(g, self.b2)
            if sign < 0:
                t.neg_()
            tc = torch.div(self.a2, self.b2).mul_(t)  # t·cs
            torch.neg(tc, out=qdd)
            torch.sub(t, tc, out=qxy)
            if qx is not None:
                torch.mul(tc, self.mx, out=qx).sub_(t * self.my)
            if qy is not None:
                torch.mul(tc, self.my, out=qy).sub_(t * self.mx)


class _SSIMMap(torch.autograd.Function):
    """SSIM (or cs) map of ``valid`` statistics over already padded images, with its own backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor, c1: float, c2: float,  # noqa: ANN001
                want_ssim: bool, as_loss: bool) -> torch.Tensor:
        n, c, rows, cols = x.shape
        k = kernel.shape[0]
        h, w = rows - k + 1, cols - k + 1
        out = x.new_empty((n, c, h, w))
        weights: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for n0, n1, r0, r1 in _bands(n, c, h, cols):
            ch = (n1 - n0) * c
            if ch not in weights:
                weights[ch] = _windows(kernel, ch, 1.0)
            m = _filter(_moment_stack(x[n0:n1, :, r0:r1 + k - 1], y[n0:n1, :, r0:r1 + k - 1]), *weights[ch], 0)
            z = _Terms(m, c1, c2, want_ssim).value(want_ssim, as_loss)
            out[n0:n1, :, r0:r1].copy_(z.view(r1 - r0, w, n1 - n0, c).permute(2, 3, 0, 1))
        ctx.save_for_backward(x, y, kernel)
        ctx.settings = (c1, c2, want_ssim, -1.0 if as_loss else 1.0)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN205
        x, y, kernel = ctx.saved_tensors
        c1, c2, want_ssim, sign = ctx.settings
        grad_x, grad_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (grad_x or grad_y):
            return None, None, None, None, None, None, None
        n, c, rows, cols = x.shape
        k = kernel.shape[0]
        h, w = rows - k + 1, cols - k + 1
        dx = torch.empty_like(x, memory_format=torch.contiguous_format) if grad_x else None
        dy = torch.empty_like(y, memory_format=torch.contiguous_format) if grad_y else None
        nq = 2 + int(grad_x) + int(grad_y)
        fwd: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        adj: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for n0, n1, a, b in _bands(n, c, rows, cols):
            nb, ch = n1 - n0, (n1 - n0) * c
            if ch not in fwd:
                fwd[ch] = _windows(kernel, ch, 1.0)
                adj[ch] = _windows(kernel, ch, 2.0)  # the factor 2 left out of the coefficients
            # Input rows [a, b) receive gradient from output rows [a − k + 1, b) ∩ [0, h).
            o0, o1 = max(0, a - k + 1), min(h, b)
            xs, ys = x[n0:n1, :, o0:o1 + k - 1], y[n0:n1, :, o0:o1 + k - 1]
            p = _moment_stack(xs, ys)
            terms = _Terms(_filter(p, *fwd[ch], 0), c1, c2, want_ssim)
            g = grad[n0:n1, :, o0:o1].permute(2, 3, 0, 1).reshape(o1 - o0, w, ch)
            lead = o0 - (a - k + 1)  # zero rows above (top of the image)
            span = b - a + k - 1
            q = x.new_empty((nq, span, w, ch)) if span == o1 - o0 else x.new_zeros((nq, span, w, ch))
            terms.coefficients(g, sign, want_ssim, grad_x, grad_y, q[:, lead:lead + o1 - o0])
            r = _filter(q, *adj[ch], k - 1)  # (nq, b − a, cols, ch): the adjoint window
            xb = p[0, a - o0:b - o0].view(b - a, cols, nb, c)
            yb = p[1, a - o0:b - o0].view(b - a, cols, nb, c)
            diff = torch.sub(xb, yb)
            r = r.view(nq, b - a, cols, nb, c)
            i = 0
            if grad_x:
                gx = torch.addcmul(r[i], yb, r[nq - 2]).addcmul_(diff, r[nq - 1])
                dx[n0:n1, :, a:b].copy_(gx.permute(2, 3, 0, 1))
                i += 1
            if grad_y:
                gy = torch.addcmul(r[i], xb, r[nq - 2]).addcmul_(diff, r[nq - 1], value=-1.0)
                dy[n0:n1, :, a:b].copy_(gy.permute(2, 3, 0, 1))
        return dx, dy, None, None, None, None, None


def _windows(kernel: torch.Tensor, ch: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Depthwise weights (ch,1,K,1) and (ch,1,1,K) of the 1-D ``kernel``; ``scale`` multiplies one."""
    k = kernel.shape[0]
    kh = (kernel * scale if scale != 1.0 else kernel).view(1, 1, k, 1).repeat(ch, 1, 1, 1)
    kw = kernel.view(1, 1, 1, k).repeat(ch, 1, 1, 1)
    return kh, kw


def ssim_map(x: torch.Tensor, y: torch.Tensor, window_size: int = WINDOW_SIZE, sigma: float = SIGMA,
             k1: float = K1, k2: float = K2, data_range: float = 1.0, padding: str = "valid",
             as_loss: bool = False, cs_only: bool = False) -> torch.Tensor:
    """The per-channel SSIM map (or 1 − SSIM with ``as_loss``; the cs map with ``cs_only``).

    x, y: N×C×H×W in [0, data_range], float32 or float64 (others are computed in float32).
    Returns N×C×H×W (``reflect``) or N×C×(H−K+1)×(W−K+1) (``valid``), in the compute dtype.
    """
    check_ssim_settings(window_size, sigma, k1, k2, data_range)
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    with no_autocast(x.device):
        x, y = as_float(x, y)
        p = window_size // 2
        if padding == "valid":
            _check_images(x, y, window_size, f"SSIM with window_size={window_size} and padding='valid'")
        else:
            _check_images(x, y, p + 1, f"SSIM with window_size={window_size} and padding='reflect'")
            if p:
                x = F.pad(x, (p, p, p, p), mode="reflect")
                y = F.pad(y, (p, p, p, p), mode="reflect")
        kernel = gaussian_kernel1d(window_size, sigma, dtype=x.dtype, device=x.device)
        c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
        return _SSIMMap.apply(x, y, kernel, c1, c2, not cs_only, as_loss)


def ssim_per_item(x: torch.Tensor, y: torch.Tensor, window_size: int = WINDOW_SIZE, sigma: float = SIGMA,
                  k1: float = K1, k2: float = K2, data_range: float = 1.0, padding: str = "valid") -> torch.Tensor:
    """Canonical SSIM of each item (not the loss): the mean of its map over channels and pixels, N values.

    ``padding="valid"`` (the default here) is Wang et al.'s MATLAB value, equal to
    ``piq.ssim(x, y, data_range=1., downsample=False, reduction='none')`` and
    ``pytorch_msssim.ssim(x, y, data_range=1, size_average=False)``; ``padding="reflect"`` equals
    ``kornia.metrics.ssim(x, y, 11, eps=0.0).mean((1, 2, 3))`` and torchmetrics'
    ``structural_similarity_index_measure(..., data_range=1.0, reduction='none')``.
    """
    return ssim_map(x, y, window_size, sigma, k1, k2, data_range, padding).mean(dim=(1, 2, 3))


@register_loss("ssim")
class SSIM(nn.Module):
    """1 − SSIM per pixel and channel (Wang et al. 2004); a map loss, 0 for identical images.

    Settings: ``window_size`` (odd, 11), ``sigma`` (1.5), ``k1`` (0.01), ``k2`` (0.03),
    ``data_range`` (1.0 for images in [0, 1]), ``padding``: ``"reflect"`` (same-size map, the
    natural choice under a face mask) or ``"valid"`` (the map shrinks by window_size − 1).
    """

    output = MAP

    def __init__(self, window_size: int = WINDOW_SIZE, sigma: float = SIGMA, k1: float = K1, k2: float = K2,
                 data_range: float = 1.0, padding: str = "reflect") -> None:
        super().__init__()
        check_ssim_settings(window_size, sigma, k1, k2, data_range)
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(map(repr, PADDINGS))}, got {padding!r}")
        self.window_size = window_size
        self.sigma = float(sigma)
        self.k1, self.k2 = float(k1), float(k2)
        self.data_range = float(data_range)
        self.padding = padding

    def extra_repr(self) -> str:
        return (f"window_size={self.window_size}, sigma={self.sigma}, k1={self.k1}, k2={self.k2}, "
                f"data_range={self.data_range}, padding={self.padding!r}")

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """N×C×H×W images → N×C×h×w map of 1 − SSIM (h = H for ``reflect``, H − window_size + 1 for ``valid``)."""
        return ssim_map(pred, target, self.window_size, self.sigma, self.k1, self.k2, self.data_range,
                        self.padding, as_loss=True)

    def per_item(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Canonical SSIM (not the loss) of each item with this loss's settings: N values."""
        return ssim_per_item(pred, target, self.window_size, self.sigma, self.k1, self.k2, self.data_range,
                             self.padding)
