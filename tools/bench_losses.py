"""Benchmark the built-in losses (forward + backward) against their peers, as docs/MEASURE.md asks.

For each loss and size: a batch of fresh random images (``--batch``×3×S×S in [0, 1]), the
gradient taken w.r.t. the prediction, ours and each peer timed in turn (A B C A B C ...) after a
warm-up, ``--repeats`` rounds. Reported: the median time per call with its spread (interquartile
range), and the ratio ours / fastest peer as the median of the per-round ratios (each round's calls
are adjacent in time, so a noisy machine shifts both) with its interquartile range.

Peers: mae ``torch.nn.functional.l1_loss``; ssim piq ``ssim(downsample=False)``, pytorch-msssim
``ssim(data_range=1)``, kornia ``losses.ssim_loss``; ms_ssim piq ``multi_scale_ssim`` and
pytorch-msssim ``ms_ssim`` (5 scales need 161 px: below that both sides run the scales that fit,
piq with the first weights, pytorch-msssim n/a); lpips the ``lpips`` package (AlexNet, random trunk:
``pnet_rand=True`` and ``pretrained_trunk=False``, nothing is downloaded); ffl the official
``focal_frequency_loss``; gmsd piq ``gmsd`` (per item, as ours); lpl a plain reference written
below from docs/LOSSES.md (two pyramids, labelled so), and with ``--faceswap DIR`` faceswap's own
``LaplacianPyramidLoss`` (``spatial_output=False`` against our per-item value, ``True`` against our
map), imported from that checkout of deepfakes/faceswap (its code is not part of this repository).
A loss whose plugin is not registered (or a peer that is not installed) is skipped with a note.
Besides the fastest peer, each row gives ours / every other peer.

Each loss and size runs in a fresh process (``--no-isolate``: all in this one). Timings in one
long-lived process depend on what ran before it: right after SSIM, GMSD's (former) ratio to piq
was 0.71 / 0.84 at 64 / 128 px against 0.90 / 1.15 in a fresh process (the cause is not pinned
down; the allocator's state after large buffers is the likely one), which is how an earlier table
came to report 0.65 / 0.51. A fresh process per row gives every loss the same start, and the order
of ``--losses`` no longer matters.

``--mix [CONFIG]``: the configured loss mix (LossMix, with face/eye/mouth masks) against the sum of
the same losses run one by one (default config: faceswap_lite/configs/default.toml).

The table is printed and written to ``--out`` (docs/benchmarks.md) under a heading for this device
and mode, replacing an earlier run's section of the same heading; with the date, machine, torch
version and the command.

    python tools/bench_losses.py                                   # all losses, 64/128/256 px, 2 threads
    python tools/bench_losses.py --losses ssim,ms_ssim --repeats 9
    python tools/bench_losses.py --mix                              # faceswap_lite/configs/default.toml's mix
    python tools/bench_losses.py --losses lpl --faceswap /path/to/faceswap   # LPL vs faceswap's too
    python tools/bench_losses.py --device cuda                      # fp32 and bf16 autocast
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import multiprocessing
import os
import re
import statistics
import sys
import time
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from faceswap_lite.losses import LossMix  # noqa: E402
from faceswap_lite.machine import cpu_name  # noqa: E402
from faceswap_lite.registry import (  # noqa: E402
    LOSSES,  # noqa: E402
    load_plugins,
    plugin_failures,
)

ALL_LOSSES = ("mae", "ssim", "ms_ssim", "lpips", "ffl", "gmsd", "lpl")
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli, Bovik 2003

Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Case:
    """One row: ours against its peers on one size (peers may be empty: n/a)."""

    loss: str
    label: str  # e.g. "ssim reflect", "ms_ssim 3 scales"
    ours: Fn
    peers: dict[str, Fn]
    note: str = ""


# ---------------------------------------------------------------------------------------------
# Peers


def _scalar(out: torch.Tensor) -> torch.Tensor:
    return out if out.dim() == 0 else out.mean()


def _ours(name: str, **settings: object) -> Fn:
    loss = LOSSES.build(name, settings)
    return lambda x, y: loss(x, y).mean()


def _lpl_band_errors(x: torch.Tensor, y: torch.Tensor, levels: int) -> Iterator[torch.Tensor]:
    """|L_j(x) − L_j(y)| for j = 0..levels of docs/LOSSES.md's LPL, written plainly (two pyramids).

    Gaussian 5×5, σ = 1.0, replicate padding, per channel; L_j = G_j − blur(G_j),
    G_{j+1} = avgpool2(blur(G_j)); L_levels = G_levels.
    """
    c = x.shape[1]
    coords = torch.arange(5, dtype=x.dtype, device=x.device) - 2
    g = torch.exp(-(coords**2) / 2)
    g = g / g.sum()
    w = (g[:, None] * g[None, :]).expand(c, 1, 5, 5)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (2, 2, 2, 2), mode="replicate"), w, groups=c)

    gx, gy = x, y
    for _ in range(levels):
        bx, by = blur(gx), blur(gy)
        yield ((gx - bx) - (gy - by)).abs()
        gx, gy = F.avg_pool2d(bx, 2), F.avg_pool2d(by, 2)
    yield (gx - gy).abs()


def lpl_reference(x: torch.Tensor, y: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """The LPL per item, plainly (no peer package exists): Σ 4^(−j) mean |ΔL_j|."""
    return sum(4.0**-j * err.mean(dim=(1, 2, 3)) for j, err in enumerate(_lpl_band_errors(x, y, levels)))


def lpl_map_reference(x: torch.Tensor, y: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """The LPL map, plainly: each level's |ΔL_j| upsampled bilinearly to H×W, weighted 4^(−j) and
    summed (N×C×H×W)."""
    size = x.shape[-2:]
    total = torch.zeros_like(x)
    for j, err in enumerate(_lpl_band_errors(x, y, levels)):
        if err.shape[-2:] != size:
            err = F.interpolate(err, size=size, mode="bilinear", align_corners=False)
        total = total + 4.0**-j * err
    return total


def load_faceswap_lpl(checkout: str) -> tuple[type, str]:
    """faceswap's ``LaplacianPyramidLoss`` class from a deepfakes/faceswap checkout, and how it was loaded.

    First as faceswap itself imports it (``lib.model.losses``, which needs torchvision and tkinter
    through ``lib.utils``). When that import fails, only the file that defines the class is run,
    with two stand-ins for what it takes from faceswap's ``lib``: ``lib.logger.parse_class_init``
    (a debug-log string) and ``lib.utils.get_module_objects`` (its ``__all__``); neither touches
    the loss.
    """
    root = Path(checkout).resolve()
    losses_dir = root / "lib" / "model" / "losses"
    if not losses_dir.is_dir():
        raise SystemExit(f"--faceswap {checkout}: no lib/model/losses there; give a deepfakes/faceswap checkout")
    before = set(sys.modules)
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module("lib.model.losses").LaplacianPyramidLoss, "imported as is"
    except Exception as exc:  # noqa: BLE001 - any import failure: fall back to the one file
        why = f"{type(exc).__name__}: {exc}"
        for half_imported in set(sys.modules) - before:
            del sys.modules[half_imported]
    finally:
        sys.path.remove(str(root))
    source = next((f for f in sorted(losses_dir.glob("*.py")) if "class LaplacianPyramidLoss" in f.read_text()), None)
    if source is None:
        raise SystemExit(f"--faceswap {checkout}: no LaplacianPyramidLoss in {losses_dir}")
    shims = {"lib": types.ModuleType("lib"), "lib.logger": types.ModuleType("lib.logger"),
             "lib.utils": types.ModuleType("lib.utils")}
    shims["lib.logger"].parse_class_init = lambda local_vars: "Initializing LaplacianPyramidLoss"
    shims["lib.utils"].get_module_objects = lambda name: []
    shims["lib.utils"].FaceswapError = RuntimeError
    saved = {k: sys.modules.get(k) for k in shims}
    sys.modules.update(shims)
    try:
        namespace: dict[str, object] = {"__name__": "faceswap_lpl"}
        exec(compile(source.read_text(), str(source), "exec"), namespace)  # noqa: S102 - the user's checkout
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return namespace["LaplacianPyramidLoss"], f"{source.relative_to(root)} alone, lib shims ({why})"


def _try_import(module: str) -> object | None:
    try:
        return __import__(module)
    except ImportError:
        return None


def build_cases(name: str, size: int, device: str, faceswap: str | None = None) -> tuple[list[Case], str]:
    """The rows for loss ``name`` at ``size`` px, or ([], why) when it cannot run; ``faceswap``: a
    deepfakes/faceswap checkout whose LaplacianPyramidLoss LPL is also timed against."""
    if name not in LOSSES:
        failed = [str(f) for f in plugin_failures() if name in str(f)]
        return [], f"{name}: not registered yet" + (f" ({'; '.join(failed)})" if failed else "")
    piq = _try_import("piq")
    pms = _try_import("pytorch_msssim")
    if name == "mae":
        return [Case(name, "mae", _ours("mae"), {"torch l1_loss": lambda x, y: F.l1_loss(x, y)})], ""
    if name == "ssim":
        peers: dict[str, Fn] = {}
        if piq:
            peers["piq ssim"] = lambda x, y: piq.ssim(x, y, data_range=1.0, downsample=False)
        if pms:
            peers["pytorch-msssim ssim"] = lambda x, y: pms.ssim(x, y, data_range=1.0, size_average=False).mean()
        kornia = _try_import("kornia")
        if kornia:
            peers["kornia ssim_loss"] = lambda x, y: kornia.losses.ssim_loss(x, y, 11)
        return [Case(name, "ssim reflect", _ours("ssim", padding="reflect"), peers),
                Case(name, "ssim valid", _ours("ssim", padding="valid"), peers)], ""
    if name == "ms_ssim":
        from faceswap_lite.plugins.losses.ms_ssim import scales_that_fit

        m = scales_that_fit(size)
        if m == 0:
            return [], f"ms_ssim: {size} px is smaller than one 11-px window"
        peers = {}
        if piq:
            weights = torch.tensor(MS_SSIM_WEIGHTS[:m], device=device)
            if m == len(MS_SSIM_WEIGHTS):
                peers["piq multi_scale_ssim"] = lambda x, y: piq.multi_scale_ssim(x, y, data_range=1.0)
            else:
                peers["piq multi_scale_ssim"] = lambda x, y: piq.multi_scale_ssim(
                    x, y, data_range=1.0, scale_weights=weights.to(x.dtype))
        note = ""
        if pms and m == len(MS_SSIM_WEIGHTS):
            peers["pytorch-msssim ms_ssim"] = lambda x, y: pms.ms_ssim(x, y, data_range=1.0, size_average=False).mean()
        elif pms:
            note = f"pytorch-msssim n/a below 161 px (it requires 5 scales); {m} scales fit"
        label = "ms_ssim" if m == len(MS_SSIM_WEIGHTS) else f"ms_ssim {m} scales"
        return [Case(name, label, _ours("ms_ssim", scales=m), peers, note)], ""
    if name == "lpips":
        lpips = _try_import("lpips")
        item_peers, map_peers = {}, {}
        if lpips:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peer = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False).to(device).eval()
                peer_map = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, spatial=True,
                                       verbose=False).to(device).eval()
            for p in list(peer.parameters()) + list(peer_map.parameters()):
                p.requires_grad_(False)
            item_peers["lpips LPIPS(alex, random trunk)"] = lambda x, y: peer(x, y, normalize=True).mean()
            map_peers["lpips LPIPS(alex, spatial=True)"] = lambda x, y: peer_map(x, y, normalize=True).mean()
        ours = LOSSES.build("lpips", {"net": "alex", "pretrained_trunk": False}).to(device)
        return [Case(name, "lpips alex (per item)", lambda x, y: ours.per_item(x, y).mean(), item_peers),
                Case(name, "lpips alex (map)", lambda x, y: ours(x, y).mean(), map_peers)], ""
    if name == "ffl":
        ffl_pkg = _try_import("focal_frequency_loss")
        peers = {}
        if ffl_pkg:
            peer = ffl_pkg.FocalFrequencyLoss()
            peers["focal_frequency_loss"] = lambda x, y: peer(x, y)
        return [Case(name, "ffl", _ours("ffl"), peers)], ""
    if name == "gmsd":
        peers = {"piq gmsd": lambda x, y: piq.gmsd(x, y, data_range=1.0, reduction="none").mean()} if piq else {}
        return [Case(name, "gmsd", _ours("gmsd"), peers)], ""
    if name == "lpl":
        item_peers: dict[str, Fn] = {"plain reference (inline, LOSSES.md)": lambda x, y: lpl_reference(x, y).mean()}
        map_peers: dict[str, Fn] = {"plain map reference (inline, LOSSES.md)":
                                    lambda x, y: lpl_map_reference(x, y).mean()}
        note = ""
        if faceswap:
            cls, how = load_faceswap_lpl(faceswap)
            fs_item, fs_map = cls(spatial_output=False).to(device), cls(spatial_output=True).to(device)
            # faceswap's forward takes (y_true, y_pred)
            item_peers["faceswap LaplacianPyramidLoss"] = lambda x, y: fs_item(y, x).mean()
            map_peers["faceswap LaplacianPyramidLoss(spatial)"] = lambda x, y: fs_map(y, x).mean()
            note = f"faceswap LaplacianPyramidLoss from {faceswap}: {how}"
        ours = LOSSES.build("lpl").to(device)
        return [Case(name, "lpl (per item)", lambda x, y: ours.per_item(x, y).mean(), item_peers, note),
                Case(name, "lpl (map, training)", _ours("lpl"), map_peers)], ""
    return [Case(name, name, _ours(name), {})], ""


# ---------------------------------------------------------------------------------------------
# Timing


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_call(fn: Fn, x: torch.Tensor, y: torch.Tensor, device: str, bf16: bool) -> float:
    """Seconds for one forward + backward of ``fn`` (gradient w.r.t. x)."""
    x.grad = None
    _sync(device)
    t0 = time.perf_counter()
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
        value = _scalar(fn(x, y))
    value.backward()
    _sync(device)
    return time.perf_counter() - t0


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], statistics.median(values), q[2]


def run_interleaved(fns: dict[str, Fn], shape: tuple[int, ...], device: str, bf16: bool, repeats: int,
                    warmup: int = 2) -> dict[str, list[float]]:
    """Times per function, interleaved (the order rotates each round), fresh inputs every round."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(warmup + repeats):
        x = torch.rand(shape, device=device).requires_grad_(True)
        y = torch.rand(shape, device=device)
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            t = time_call(fns[k], x, y, device, bf16)
            if r >= warmup:
                times[k].append(t)
    return times


def _ms(q: tuple[float, float, float]) -> str:
    return f"{q[1] * 1e3:.1f} [{q[0] * 1e3:.1f}–{q[2] * 1e3:.1f}]"


def _ratio_txt(q: tuple[float, float, float]) -> str:
    return f"**{q[1]:.2f}** [{q[0]:.2f}–{q[2]:.2f}]"


def bench_one(name: str, size: int, batch: int, repeats: int, device: str, bf16: bool,
              faceswap: str | None = None) -> tuple[list[list[str]], list[str]]:
    """The rows (and notes) of loss ``name`` at ``size`` px, timed in this process."""
    rows, notes = [], []
    try:
        cases, why = build_cases(name, size, device, faceswap)
    except Exception as exc:  # a peer or plugin that cannot be built: say so, go on
        cases, why = [], f"{name}: could not be built ({type(exc).__name__}: {exc})"
    if why:
        notes.append(f"{size} px: {why}")
        print(f"note: {size} px: {why}", flush=True)
    for case in cases:
        if case.note:
            notes.append(f"{size} px: {case.note}")
        fns = {"ours": case.ours, **case.peers}
        try:
            times = run_interleaved(fns, (batch, 3, size, size), device, bf16, repeats)
        except Exception as exc:
            notes.append(f"{size} px {case.label}: failed ({type(exc).__name__}: {exc})")
            print(f"note: {size} px {case.label} failed: {exc}", flush=True)
            continue
        if case.peers:
            medians = {k: statistics.median(times[k]) for k in case.peers}
            fastest = min(medians, key=medians.get)
            ratios = {k: quartiles([a / b for a, b in zip(times["ours"], times[k])]) for k in case.peers}
            peer_txt = f"{fastest}: {_ms(quartiles(times[fastest]))}"
            ratio_txt = _ratio_txt(ratios[fastest])
            others = "; ".join(f"{k}: {medians[k] * 1e3:.1f}, ours / it {_ratio_txt(ratios[k])}"
                               for k in case.peers if k != fastest)
        else:
            peer_txt, others, ratio_txt = "n/a", "", "n/a"
        row = [case.label, str(size), _ms(quartiles(times["ours"])), peer_txt, ratio_txt, others or "–"]
        rows.append(row)
        print(" | ".join(row), flush=True)
    return rows, notes


def _bench_one_fresh(threads: int, *args: object) -> tuple[list[list[str]], list[str]]:
    """:func:`bench_one` in a freshly spawned interpreter (same threads, plugins loaded anew)."""
    torch.set_num_threads(threads)
    load_plugins()
    return bench_one(*args)


def bench_losses(names: list[str], sizes: list[int], batch: int, repeats: int, device: str,
                 bf16: bool, faceswap: str | None = None, isolate: bool = True) -> tuple[list[list[str]], list[str]]:
    rows, notes = [], []
    spawn = multiprocessing.get_context("spawn")
    for size in sizes:
        for name in names:
            args = (name, size, batch, repeats, device, bf16, faceswap)
            if isolate:
                with spawn.Pool(1) as pool:
                    more_rows, more_notes = pool.apply(_bench_one_fresh, (torch.get_num_threads(), *args))
            else:
                more_rows, more_notes = bench_one(*args)
            rows += more_rows
            notes += more_notes
    header = ["loss", "px", "ours ms (median [IQR])", "fastest peer ms (median [IQR])",
              "ours / fastest (median [IQR])", "other peers: ms (median), ours / it (median [IQR])"]
    return [header, *rows], notes


def bench_mix(config: str, sizes: list[int], batch: int, repeats: int, device: str,
              bf16: bool) -> tuple[list[list[str]], list[str]]:
    """The configured LossMix (masked) against the sum of its losses run one by one."""
    from faceswap_lite.config import load_config

    cfg = load_config(config)
    specs = []
    for spec in cfg.loss:
        spec = dict(spec)
        if spec["name"] == "lpips" and not spec.get("trunk_weights"):
            spec["pretrained_trunk"] = False  # no download in a benchmark
        specs.append(spec)
    notes = [f"mix from {config}: " + ", ".join(f"{s['name']}×{s.get('weight', 1.0):g}" for s in specs)]
    missing = [s["name"] for s in specs if s["name"] not in LOSSES]
    if missing:
        notes.append(f"mix skipped: {', '.join(missing)} not registered yet")
        return [], notes
    mix = LossMix(specs, eye_weight=cfg.mask.eye_weight, mouth_weight=cfg.mask.mouth_weight).to(device)
    rows = []
    one_by_one = list(zip(mix.losses, mix.weights))
    for size in sizes:
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, size, device=device),
                                torch.linspace(-1, 1, size, device=device), indexing="ij")
        face = ((xx / 0.8) ** 2 + (yy / 0.95) ** 2 <= 1).float().expand(batch, 1, size, size)
        eyes = (((xx.abs() - 0.35) / 0.15) ** 2 + ((yy + 0.2) / 0.08) ** 2 <= 1).float().expand(batch, 1, size, size)
        mouth = ((xx / 0.3) ** 2 + ((yy - 0.5) / 0.1) ** 2 <= 1).float().expand(batch, 1, size, size)
        masks = {"face": face, "eyes": eyes, "mouth": mouth}
        fns = {
            "mix": lambda x, y, masks=masks: mix(x, y, **masks).total,
            "sum": lambda x, y: sum(w * _scalar(loss(x, y)) for loss, w in one_by_one),
        }
        times = run_interleaved(fns, (batch, 3, size, size), device, bf16, repeats)
        ratio = quartiles([a / b for a, b in zip(times["mix"], times["sum"])])
        row = ["mix: " + "+".join(mix.names), str(size), _ms(quartiles(times["mix"])),
               f"losses one by one: {_ms(quartiles(times['sum']))}",
               f"**{ratio[1]:.2f}** [{ratio[0]:.2f}–{ratio[2]:.2f}]", "–"]
        rows.append(row)
        print(" | ".join(row), flush=True)
    header = ["mix", "px", "mix ms (median [IQR])", "reference ms (median [IQR])", "mix / reference", ""]
    return [header, *rows], notes


# ---------------------------------------------------------------------------------------------
# Report


def machine() -> str:
    text = f"{cpu_name()}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name()}"
    return text


def markdown_table(rows: list[list[str]]) -> str:
    if not rows:
        return ""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace the section under ``heading`` in ``path`` (or append it); other sections stay as they are."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\nRatios from interleaved runs; see docs/MEASURE.md.\n"
    block = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: block + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="64,128,256", help="image sides in px, comma-separated")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds after 2 warm-up rounds")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--losses", default=",".join(ALL_LOSSES), help="comma-separated loss names")
    ap.add_argument("--mix", nargs="?", const=str(ROOT / "faceswap_lite" / "configs" / "default.toml"), default=None,
                    metavar="CONFIG", help="benchmark the config's loss mix instead (default faceswap_lite/configs/default.toml)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file to update ('' = none)")
    ap.add_argument("--faceswap", metavar="DIR", default=None,
                    help="a deepfakes/faceswap checkout: time LPL against its LaplacianPyramidLoss too")
    ap.add_argument("--no-isolate", dest="isolate", action="store_false",
                    help="time every loss in this process (default: a fresh process per loss and size)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device")
    load_plugins()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    names = [n.strip() for n in args.losses.split(",") if n.strip()]
    modes = [False, True] if args.device == "cuda" else [False]

    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    sections = []
    for bf16 in modes:
        mode = "bf16 autocast" if bf16 else "fp32"
        print(f"== {args.device} {mode}, batch {args.batch}, threads {args.threads}", flush=True)
        if args.mix:
            rows, notes = bench_mix(args.mix, sizes, args.batch, args.repeats, args.device, bf16)
            what = "loss mix vs its losses one by one"
        else:
            rows, notes = bench_losses(names, sizes, args.batch, args.repeats, args.device, bf16,
                                       args.faceswap, args.isolate)
            what = "losses, forward + backward"
        table = markdown_table(rows)
        heading = f"## {what} ({args.device}, {mode}, {args.threads} thread{'s' if args.threads > 1 else ''})"
        command = "python tools/bench_losses.py " + " ".join(argv if argv is not None else sys.argv[1:])
        meta = (f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
                f"- machine: {machine()}; torch {torch.__version__}; threads {args.threads}\n"
                f"- batch {args.batch}×3×S×S, fresh random images in [0, 1]; gradient w.r.t. the prediction; "
                f"interleaved, 2 warm-up rounds, {args.repeats} timed rounds"
                f"{'; a fresh process per loss and size' if args.isolate and not args.mix else ''}\n"
                f"- load average before the run: {load_before}\n"
                f"- command: `{command.strip()}`\n")
        notes_txt = "".join(f"- note: {n}\n" for n in notes)
        body = f"{meta}{notes_txt}\n{table}\n"
        print("\n" + heading + "\n\n" + body, flush=True)
        sections.append((heading, body))
    if args.out:
        for heading, body in sections:
            write_section(Path(args.out), heading, body)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
