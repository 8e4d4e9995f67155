"""The SSIM map (Wang, Bovik, Sheikh, Simoncelli 2004): the one implementation the ``ssim`` and
``ms_ssim`` losses and the masked SSIM metric (:mod:`faceswap_lite.train.metrics`) all call.

:func:`ssim_map` takes N×C×H×W images in [0, L] and returns the per-channel map of SSIM (1 − SSIM
with ``as_loss``, the contrast-structure term alone with ``cs_only``), N×C×H×W with
``padding="reflect"`` or N×C×(H−K+1)×(W−K+1) with ``padding="valid"``.

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
- the gradient is written out (an ``autograd.Function``): the forward pass also forms three
  coefficient maps (∂SSIM/∂ of the filtered moments), and the backward pass only scales them by
  the incoming gradient, filters them with the adjoint window and combines them with x and y,
  instead of autograd's trail of 30-odd saved intermediates;
- large images are processed in bands of rows (and chunks of images·channels) so that a band's
  maps stay in the CPU cache and no single buffer crosses glibc's 32 MB mmap threshold;
- float64 on the CPU (tests, references), which oneDNN does not filter, uses banded matrix
  products instead of convolutions.

Statistics are computed in float32 (float64 for float64 input) whatever the autocast state.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import as_float, no_autocast
from .filters import gaussian_kernel1d

# Wang et al. 2004, section III.C (and their reference MATLAB ssim_index.m): an 11×11 Gaussian
# window with standard deviation 1.5, K1 = 0.01, K2 = 0.03.
WINDOW_SIZE = 11
SIGMA = 1.5
K1 = 0.01
K2 = 0.03
PADDINGS = ("valid", "reflect")

# Tiling (measured on a 2-core AMD EPYC, tools/bench_losses.py): the statistics are computed per
# chunk of at most _CHUNK_CHANNELS images·channels (the depthwise convolution vectorises over them) and
# per band of rows whose stacked moments take about _BAND_BYTES, so a band's maps stay in the cache.
_CHUNK_CHANNELS = 48
_BAND_BYTES = 24 << 20


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


def _chunks(channels: int) -> list[tuple[int, int]]:
    """Split ``channels`` (images·channels) into near-equal chunks of at most _CHUNK_CHANNELS."""
    count = -(-channels // _CHUNK_CHANNELS)
    size = -(-channels // count)
    return [(c0, min(channels, c0 + size)) for c0 in range(0, channels, size)]


def _bands(rows: int, width: int, ch: int, k: int) -> list[tuple[int, int]]:
    """Split ``rows`` into near-equal bands whose 4 moments (with the k − 1 halo rows) fit _BAND_BYTES."""
    step = max(k, _BAND_BYTES // (16 * width * ch) - (k - 1))
    count = -(-rows // step)
    step = -(-rows // count)
    return [(r0, min(rows, r0 + step)) for r0 in range(0, rows, step)]


def _to_hwc(t: torch.Tensor, c0: int, c1: int) -> torch.Tensor:
    """Planes c0:c1 of N×C×H×W (viewed as N·C planes) → a contiguous H×W×(c1 − c0) copy."""
    n, c, h, w = t.shape
    out = t.new_empty((h * w, c1 - c0))
    out.copy_(t.view(n * c, h * w)[c0:c1].t())  # a blocked 2-D transpose
    return out.view(h, w, c1 - c0)


class _Filter:
    """Separable filtering of (B, rows, cols, ch) contiguous stacks: rows first, then columns.

    float32 (and any dtype on a GPU): two grouped depthwise convolutions on a channels-last view, the
    layout oneDNN filters without copies. float64 on the CPU (no oneDNN kernel; PyTorch's fallback
    loops over the channels): two matrix products with banded matrices, which BLAS runs quickly.
    ``pad`` adds zeros on each side (``pad = K − 1`` gives the adjoint of the ``valid`` filter).
    """

    def __init__(self, gh: torch.Tensor, gw: torch.Tensor, ch: int) -> None:
        self.gh, self.gw, self.ch = gh, gw, ch
        self.banded = gh.dtype == torch.float64 and gh.device.type == "cpu"
        if not self.banded:
            k = gh.shape[0]
            self.kh = gh.view(1, 1, k, 1).repeat(ch, 1, 1, 1)
            self.kw = gw.view(1, 1, 1, k).repeat(ch, 1, 1, 1)

    def __call__(self, stack: torch.Tensor, pad_h: int = 0, pad_w: int = 0) -> torch.Tensor:
        if self.banded:
            b, rows, cols, ch = stack.shape
            mh, mw = _band_matrix(self.gh, rows, pad_h), _band_matrix(self.gw, cols, pad_w)
            out = torch.matmul(mh, stack.view(b, rows, cols * ch)).view(b, -1, cols, ch)
            return torch.matmul(out.transpose(-1, -2), mw.t()).transpose(-1, -2).contiguous()
        v = stack.permute(0, 3, 1, 2)  # a channels-last (B, ch, rows, cols) view: no copy
        v = F.conv2d(v, self.kh, padding=(pad_h, 0), groups=self.ch)
        v = F.conv2d(v, self.kw, padding=(0, pad_w), groups=self.ch)
        return v.permute(0, 2, 3, 1).contiguous()  # a no-op when the convolution kept channels-last


def _band_matrix(g: torch.Tensor, n: int, pad: int) -> torch.Tensor:
    """(n + 2·pad − K + 1) × n matrix M with M[i, j] = g[j − i + pad]: correlation with g as a product."""
    k = g.shape[0]
    m = n + 2 * pad - k + 1
    idx = torch.arange(n, device=g.device)[None, :] - torch.arange(m, device=g.device)[:, None] + pad
    inside = (idx >= 0) & (idx < k)
    return torch.where(inside, g[idx.clamp(0, k - 1)], g.new_zeros(()))


class _SSIMMap(torch.autograd.Function):
    """SSIM (or cs) map of ``valid`` statistics over already padded images, with its own backward.

    Forward, per chunk of planes and band of rows: stack x, y, xy, (x − y)² (rows × cols × planes),
    filter the stack (two grouped convolutions), form the map and, when a gradient is needed, the
    three coefficient maps q such that, with R = 2·Fᵀ(g·q) (Fᵀ: the adjoint of the filter),
        ∂/∂x = R[q_μx] + y·R[q_xy] − (x − y)·R[q_dd],   ∂/∂y = R[q_μy] + x·R[q_xy] + (x − y)·R[q_dd].
    For SSIM (r = 1/(B1·B2), S = A1·A2·r, with A1 = 2μxμy + C1, B1 = μx² + μy² + C1, A2 = 2σxy + C2,
    B2 = σx² + σy² + C2): q_dd = S·r·B1, q_xy = r·A1 − q_dd, q_μx = r·μy(A2 − A1) + S·r·μx(B1 − B2).
    For cs = A2/B2 (r = 1/B2): q_dd = cs·r, q_xy = r − q_dd, q_μx = cs·r·μx − r·μy.
    (μy: swap μx and μy.) The clamp of Var(x − y) passes the gradient (its true value is ≥ 0).
    Backward: multiply by the incoming gradient (or fold it into the window when it is one value, as
    for a mean), filter with the adjoint window, combine.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor, c1: float, c2: float,  # noqa: ANN001
                want_ssim: bool, as_loss: bool) -> torch.Tensor:
        grad_x, grad_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        x, y = x.contiguous(), y.contiguous()
        n, c, rows, cols = x.shape
        k = kernel.shape[0]
        h, w = rows - k + 1, cols - k + 1
        nq = 3 + int(grad_y) if (grad_x or grad_y) else 0
        out = x.new_empty((n, c, h, w))
        c1t, c2t, one = (x.new_full((), v) for v in (c1, c2, 1.0))
        saved = []
        for p0, p1 in _chunks(n * c):
            ch = p1 - p0
            blur = _Filter(kernel, kernel, ch)
            # Whole-image maps are kept one per tensor (each under glibc's 32 MB mmap threshold:
            # larger blocks are mapped afresh, and page-faulted, on every call).
            xs, ys = _to_hwc(x, p0, p1), _to_hwc(y, p0, p1)
            xy, d = torch.mul(xs, ys), torch.sub(xs, ys)
            dd = torch.mul(d, d)
            z = x.new_empty((h, w, ch))
            q = [x.new_empty((h, w, ch)) for _ in range(nq)]
            for r0, r1 in _bands(h, cols, ch, k):
                band = slice(r0, r1 + k - 1)
                stack = torch.stack([xs[band], ys[band], xy[band], dd[band]])
                mx, my, exy, edd = blur(stack).unbind(0)
                dm2 = torch.sub(mx, my).square_()  # (μx − μy)²
                a2 = torch.addcmul(c2t, mx, my, value=-2.0).add_(exy, alpha=2.0)  # 2σxy + C2
                b2 = edd.sub_(dm2).clamp_(min=0).add_(a2)  # Var(x − y) + 2σxy + C2 = σx² + σy² + C2
                zb = z[r0:r1]
                if want_ssim:
                    a1 = torch.addcmul(c1t, mx, my, value=2.0)  # 2μxμy + C1
                    b1 = dm2.add_(a1)  # (μx − μy)² + 2μxμy + C1 = μx² + μy² + C1
                    num, den = torch.mul(a1, a2), torch.mul(b1, b2)
                    if as_loss:
                        torch.addcdiv(one, num, den, value=-1.0, out=zb)  # exactly 0 where num == den
                    else:
                        torch.div(num, den, out=zb)
                    if nq:
                        r = den.reciprocal_()
                        sr = num.mul_(r).mul_(r)  # S·r
                        qdd = torch.mul(sr, b1, out=q[2][r0:r1])
                        torch.mul(r, a1, out=q[1][r0:r1]).sub_(qdd)
                        e = a2.sub_(a1).mul_(r)  # r(A2 − A1)
                        f = b1.sub_(b2).mul_(sr)  # S·r(B1 − B2)
                        torch.mul(my, e, out=q[0][r0:r1]).addcmul_(mx, f)
                        if grad_y:
                            torch.mul(mx, e, out=q[3][r0:r1]).addcmul_(my, f)
                else:
                    if as_loss:
                        torch.addcdiv(one, a2, b2, value=-1.0, out=zb)
                    else:
                        torch.div(a2, b2, out=zb)
                    if nq:
                        r = b2.reciprocal_()
                        cr = torch.mul(a2, r, out=q[2][r0:r1]).mul_(r)  # cs·r
                        torch.sub(r, cr, out=q[1][r0:r1])
                        torch.mul(cr, mx, out=q[0][r0:r1]).addcmul_(r, my, value=-1.0)
                        if grad_y:
                            torch.mul(cr, my, out=q[3][r0:r1]).addcmul_(r, mx, value=-1.0)
            out.view(n * c, h * w)[p0:p1].copy_(z.view(h * w, ch).t())
            if nq:
                saved += [xs, ys, d, *q]
        ctx.save_for_backward(kernel, *saved)
        ctx.layout = (n, c, rows, cols, nq)
        ctx.sign = -1.0 if as_loss else 1.0
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN205
        kernel, *saved = ctx.saved_tensors
        grad_x, grad_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        n, c, rows, cols, nq = ctx.layout
        k = kernel.shape[0]
        h, w = rows - k + 1, cols - k + 1
        dx = saved[0].new_empty((n, c, rows, cols)) if grad_x else None
        dy = saved[0].new_empty((n, c, rows, cols)) if grad_y else None
        # The incoming gradient: one value (a mean: folded into the window), one value per plane (a
        # mean per item or channel, as MS-SSIM takes), or a full map (a masked mean).
        one_value = grad.stride() == (0, 0, 0, 0)
        per_plane = not one_value and grad.stride()[2:] == (0, 0)
        scale = 2.0 * ctx.sign  # the factor 2 left out of the coefficients, and the sign of 1 − value
        window = kernel * (grad[0, 0, 0, 0] * scale) if one_value else kernel * scale
        gv = None
        if per_plane:
            gv = grad[:, :, 0, 0].reshape(n * c)
        elif not one_value:
            gv = grad.contiguous().view(n * c, h * w)
        per_chunk = 3 + nq
        for (p0, p1), i in zip(_chunks(n * c), range(0, len(saved), per_chunk)):
            xs, ys, d, *q = saved[i:i + per_chunk]
            ch = p1 - p0
            adjoint = _Filter(window, kernel, ch)
            gs = None
            if per_plane:
                gs = gv[p0:p1]  # broadcasts over rows and columns
            elif gv is not None:
                gs = xs.new_empty((h * w, ch))
                gs.copy_(gv[p0:p1].t())
                gs = gs.view(h, w, ch)
            dxs = xs.new_empty(xs.shape) if grad_x else None
            dys = xs.new_empty(xs.shape) if grad_y else None
            for a, b in _bands(rows, cols, ch, k):
                # Input rows [a, b) receive gradient from output rows [a − k + 1, b) ∩ [0, h).
                o0, o1 = max(0, a - k + 1), min(h, b)
                part = torch.stack([t[o0:o1] for t in q])
                if gs is not None:
                    part.mul_(gs if per_plane else gs[o0:o1])
                if (a, b) == (0, rows):  # one band: the convolutions pad with zeros
                    r = adjoint(part, k - 1, k - 1)
                else:
                    top, bottom = o0 - (a - k + 1), b - o1
                    if top or bottom:
                        part = F.pad(part, (0, 0, 0, 0, top, bottom))
                    r = adjoint(part, 0, k - 1)
                # r: (nq, b − a, cols, ch), the adjoint window applied to g·q
                if grad_x:
                    torch.addcmul(r[0], ys[a:b], r[1], out=dxs[a:b]).addcmul_(d[a:b], r[2], value=-1.0)
                if grad_y:
                    torch.addcmul(r[3], xs[a:b], r[1], out=dys[a:b]).addcmul_(d[a:b], r[2])
            if grad_x:
                dx.view(n * c, rows * cols)[p0:p1].copy_(dxs.view(rows * cols, ch).t())
            if grad_y:
                dy.view(n * c, rows * cols)[p0:p1].copy_(dys.view(rows * cols, ch).t())
        return dx, dy, None, None, None, None, None


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
