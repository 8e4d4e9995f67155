"""Model benchmark: Original vs SAE (df, liae) trained for the same wall-clock time on one real face set.

    python tools/bench_models.py                          # 128 px, CPU, 2 threads, 600 s per model
    python tools/bench_models.py --budget-s 5 --frames 40 # a smoke run (seconds)
    python tools/bench_models.py --device cuda --precision bf16 --gpu-recipes   # + sae-128/sae-256 speed

The face set is real: a short clip made from a photo (the demo's clip builder,
faceswap_lite/demo.py, over the shipped public-domain sample unless ``--photo`` names another) and
extracted by the project's own pipeline into ``--work`` (kept, so later runs skip extraction).
The split holds out whole blocks of consecutive frames (``--val-fraction``), as training does.

Each model trains side A alone (a reconstruction: the face set is one person) with the loss mix of
``--config`` (default faceswap_lite/configs/cpu-quick.toml: SSIM + MAE inside the face mask), Adam, the same
seed, batch and augmentation, for ``--budget-s`` seconds of training (evaluation time excluded).
At ``--evals`` evenly spaced times it measures held-out masked PSNR / SSIM
(faceswap_lite.train.metrics, inside the landmark face mask of the unaugmented face).

Reported per model: parameters, GFLOP per face for forward + backward (torch.utils.flop_counter,
batch ``--batch``), faces/s over the run, the final held-out masked PSNR / SSIM, the curve over
time, and when each model first reached Original's final masked SSIM. "original" is the Original
family at the bench resolution: faceswap's Original at 64 px, its DFL-H128 preset (= face128)
at 128 px. The widths are reduced (flags below) so each model reaches a few hundred steps on CPU.

``--gpu-recipes`` (CUDA only) also times faceswap_lite/configs/sae-128.toml and sae-256.toml at their full size,
fp32 params with bf16 autocast, with and without torch.compile: faces/s and peak memory.

The comparison is of the face only: each model is trained through ``forward`` (no mask head run,
no mask loss), so the sae mask head costs it neither time nor quality here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from faceswap_lite.config import load_config  # noqa: E402
from faceswap_lite.data import load_face_set, make_loader  # noqa: E402
from faceswap_lite.losses import LossMix  # noqa: E402
from faceswap_lite.registry import MODELS  # noqa: E402
from faceswap_lite.train.metrics import masked_psnr, masked_ssim  # noqa: E402
from faceswap_lite.train.step import Sides  # noqa: E402
from tools.machine import cpu_name, machine_line, sync  # noqa: E402

AMP = {"fp32": None, "bf16": torch.bfloat16}


@dataclass
class Result:
    name: str
    params: int
    gflop_per_face: float
    batch: int
    steps: int = 0
    train_s: float = 0.0
    curve: list[tuple[float, int, float, float]] = field(default_factory=list)  # (s, step, psnr, ssim)

    @property
    def faces_per_s(self) -> float:
        return 0.0 if self.train_s == 0 else self.steps * self.batch / self.train_s


def build_face_set(work: Path, photo: Path | None, frames: int) -> Path:
    """A clip of ``frames`` frames from ``photo`` (default: the demo's sample), extracted once into work/faces."""
    from faceswap_lite.demo import make_sample_clip, sample_photo
    from faceswap_lite.errors import FaceswapLiteError
    from faceswap_lite.extract import ExtractOptions, plan_extract, run_extract

    work.mkdir(parents=True, exist_ok=True)
    photo = photo or sample_photo()
    clip = work / f"{photo.stem}_{frames}.avi"
    faces = work / f"faces_{photo.stem}_{frames}"
    if not clip.exists():
        make_sample_clip(photo, clip, frames=frames)
    summary = run_extract(plan_extract([clip], faces, ExtractOptions(size=256, max_faces=1, workers=1)))
    if summary.faces_written + summary.faces_done_before == 0:
        raise FaceswapLiteError(f"no face found in {clip} (made from {photo}); pick a photo with one clear face")
    return faces


def model_tables(args: argparse.Namespace) -> dict[str, dict]:
    r = args.res
    ae, e, d, m = args.sae_dims
    sae = {"name": "sae", "resolution": r, "ae_dims": ae, "e_dims": e, "d_dims": d, "d_mask_dims": m,
           "pixel_norm": True, "double_res": not args.no_double_res}
    return {
        "original": {"name": "original", "resolution": r, "width": args.original_width,
                     "latent": args.original_latent},
        "sae df": {**sae, "arch": "df"},
        "sae liae": {**sae, "arch": "liae"},
    }


def gflop_per_face(model: torch.nn.Module, batch: int, res: int, device: torch.device, amp) -> float:  # noqa: ANN001
    x = torch.rand(batch, 3, res, res, device=device).contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            y = model(x, "a")
        y.float().mean().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch / 1e9


@torch.no_grad()
def evaluate(model: torch.nn.Module, val: list[dict], device: torch.device, amp) -> tuple[float, float]:  # noqa: ANN001
    """Mean held-out masked PSNR and SSIM over the validation faces."""
    model.eval()
    psnr, ssim = [], []
    for b in val:
        x, face = b["target"].to(device), b["face"].to(device)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            y = model(x.contiguous(memory_format=torch.channels_last), "a").float()
        psnr.append(masked_psnr(y, x, face))
        ssim.append(masked_ssim(y, x, face))
    model.train()
    return float(torch.cat(psnr).mean()), float(torch.cat(ssim).mean())


def train_one(name: str, table: dict, sets, cfg, args: argparse.Namespace, device: torch.device) -> Result:  # noqa: ANN001
    torch.manual_seed(args.seed)
    amp = AMP[args.precision]
    model = MODELS.build_table(table, sides=("a",)).to(device).to(memory_format=torch.channels_last)
    res = Result(name, sum(p.numel() for p in model.parameters()),
                 gflop_per_face(model, args.batch, model.resolution, device, amp), args.batch)
    mix = LossMix(cfg.loss, cfg.mask.eye_weight, cfg.mask.mouth_weight).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.5, 0.999))
    loader = make_loader(sets.train, args.batch, workers=args.workers, seed=args.seed, train=True,
                         pin_memory=device.type == "cuda")
    val = list(make_loader(sets.val, args.batch, workers=0, seed=args.seed, train=False))
    batches = iter(loader)
    marks = [args.budget_s * (i + 1) / args.evals for i in range(args.evals)]
    res.curve.append((0.0, 0, *evaluate(model, val, device, amp)))
    while marks:
        b = next(batches)
        t0 = time.perf_counter()
        x = b["input"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            out = model(x, "a")
        loss = mix(out, *(b[k].to(device, non_blocking=True) for k in ("target", "face", "eyes", "mouth"))).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        res.train_s += time.perf_counter() - t0  # the loader's time is not the model's
        res.steps += 1
        if res.train_s >= marks[0]:
            marks.pop(0)
            res.curve.append((res.train_s, res.steps, *evaluate(model, val, device, amp)))
    print(f"{name}: {res.steps} steps in {res.train_s:.0f} s, final masked PSNR {res.curve[-1][2]:.2f} dB, "
          f"SSIM {res.curve[-1][3]:.4f}", flush=True)
    return res


def time_to_reach(r: Result, ssim: float) -> float | None:
    return next((t for t, _, _, s in r.curve if s >= ssim), None)


def report(results: list[Result], args: argparse.Namespace, device: torch.device, n_train: int, n_val: int) -> str:
    ref = next((r for r in results if r.name == "original"), results[0])
    target = ref.curve[-1][3]
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"{cpu_name()}, {args.threads} threads"
    lines = [f"{dt.date.today()} · {where} · torch {torch.__version__} · {args.res} px, batch {args.batch}, "
             f"{args.precision}, {args.budget_s:g} s of training per model · {n_train} training / {n_val} held-out "
             f"faces · `python tools/bench_models.py {' '.join(sys.argv[1:])}`", "", f"Machine: {machine_line()}.", "",
             "| model | params | GFLOP/face (fwd+bwd) | steps | faces/s | masked PSNR (dB) | masked SSIM | "
             f"time to original's final SSIM {target:.4f} |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        t = time_to_reach(r, target)
        lines.append(f"| {r.name} | {r.params / 1e6:.2f} M | {r.gflop_per_face:.3f} | {r.steps} | "
                     f"{r.faces_per_s:.1f} | {r.curve[-1][2]:.2f} | {r.curve[-1][3]:.4f} | "
                     f"{'not reached' if t is None else f'{t:.0f} s'} |")
    lines += ["", "Held-out masked SSIM over training time (s: SSIM per model):", "",
              "| eval | " + " | ".join(r.name for r in results) + " |", "|---" * (len(results) + 1) + "|"]
    for i in range(len(ref.curve)):
        cells = [f"{r.curve[i][0]:.0f} s: {r.curve[i][3]:.4f}" if i < len(r.curve) else "" for r in results]
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gpu_step(both: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> None:
    """The trainer's forward (:class:`Sides`: faces, and masks where the model learns one) on both sides,
    reduced to one number to backpropagate."""
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = sum(t.float().mean() for out in both([x, x]) for t in out if t is not None)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def gpu_case(cfg, compiled: bool, steps: int, device: torch.device) -> tuple[float, float]:  # noqa: ANN001
    """(faces/s, peak GiB) of one recipe's training step, bf16 autocast, both sides with their masks."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = MODELS.build_table(cfg.model, sides=("a", "b")).to(device).to(memory_format=torch.channels_last)
    both = Sides(model, ("a", "b"))
    if compiled:
        both = torch.compile(both)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, fused=True)
    r, n = model.resolution, cfg.data.batch_size
    x = torch.rand(n, 3, r, r, device=device).contiguous(memory_format=torch.channels_last)
    for _ in range(3):  # warm-up (and compilation)
        gpu_step(both, opt, x)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        gpu_step(both, opt, x)
    sync(device)
    return 2 * n * steps / (time.perf_counter() - t0), torch.cuda.max_memory_allocated() / 2**30


def gpu_recipes(args: argparse.Namespace, device: torch.device) -> str:
    """faces/s (bf16 autocast, with and without compile) and peak memory of the full-size GPU recipes."""
    lines = ["| recipe | compile | batch | faces/s | peak memory (GiB) |", "|---|---|---|---|---|"]
    for recipe in ("sae-128", "sae-256"):
        cfg = load_config(ROOT / "faceswap_lite" / "configs" / f"{recipe}.toml")
        for compiled in (False, True):
            fps, peak = gpu_case(cfg, compiled, args.gpu_steps, device)
            lines.append(f"| {recipe} | {'yes' if compiled else 'no'} | {cfg.data.batch_size} per side | "
                         f"{fps:.1f} | {peak:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget-s", type=float, default=600.0, help="training seconds per model")
    ap.add_argument("--evals", type=int, default=10, help="held-out evaluations over the budget")
    ap.add_argument("--res", type=int, default=128, choices=(64, 128, 256))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--precision", default="fp32", choices=tuple(AMP))
    ap.add_argument("--models", default="original,sae df,sae liae", help="comma-separated, from: "
                    "original, sae df, sae liae")
    ap.add_argument("--original-width", type=float, default=0.125)
    ap.add_argument("--original-latent", type=int, default=128)
    ap.add_argument("--sae-dims", type=lambda s: tuple(int(v) for v in s.split(",")), default=(96, 12, 12, 4),
                    help="ae_dims,e_dims,d_dims,d_mask_dims")
    ap.add_argument("--no-double-res", action="store_true", help="sae without -d (full-size decoder)")
    ap.add_argument("--photo", type=Path, default=None, help="photo to build the clip from (one clear face)")
    ap.add_argument("--frames", type=int, default=160, help="clip length (frames = faces)")
    ap.add_argument("--val-fraction", type=float, default=0.2)
    ap.add_argument("--config", type=Path, default=ROOT / "faceswap_lite" / "configs" / "cpu-quick.toml",
                    help="config whose [[loss]] mix, masks and augmentation to use")
    ap.add_argument("--work", type=Path, default=Path("/tmp/faceswap_lite_bench_models"))
    ap.add_argument("--gpu-recipes", action="store_true")
    ap.add_argument("--gpu-steps", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None, help="Markdown file to append the tables to")
    ap.add_argument("--json", type=Path, default=None, help="write the raw results (curves included) here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    faces = build_face_set(args.work, args.photo, args.frames)
    cfg = load_config(args.config, [f"data.val_fraction={args.val_fraction}", "data.max_val=64"])
    sets = load_face_set(faces, args.res, cfg.data, cfg.augment, cfg.mask, seed=args.seed, side="a")
    if sets.val is None:
        sys.exit(f"{faces}: nothing held out for validation; use more --frames or a larger --val-fraction")
    tables = model_tables(args)
    unknown = [m for m in args.models.split(",") if m not in tables]
    if unknown:
        sys.exit(f"unknown --models {', '.join(unknown)}; choose from {', '.join(tables)}")
    results = [train_one(m, tables[m], sets, cfg, args, device) for m in args.models.split(",")]
    text = report(results, args, device, len(sets.train), len(sets.val))
    if args.gpu_recipes and device.type == "cuda":
        text += "\n\n" + gpu_recipes(args, device)
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write("\n" + text + "\n")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))


if __name__ == "__main__":
    main()
