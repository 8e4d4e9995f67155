"""Make the README's pictures from a real run: the preview grid and the loss curves.

    python tools/make_readme_images.py RUN_DIR        # e.g. the folder `faceswap-lite demo` trained
    python tools/make_readme_images.py --demo DIR     # run the demo into DIR first (a few minutes)

Writes docs/img/preview.png (the run's latest preview grid) and docs/img/curves.png (the scalars
of the run's TensorBoard event files, read back with tensorboard's own EventAccumulator and drawn
with Pillow: one panel per tag).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageDraw
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]
TAGS = ("loss/total", "loss/a/ssim", "loss/a/mae", "lr", "val/a/psnr", "val/a/ssim")


def read_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def panel(title: str, points: list[tuple[int, float]], w: int = 300, h: int = 190) -> Image.Image:
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    left, top, right, bottom = 46, 22, w - 10, h - 24
    d.text((left, 4), title, fill=(20, 20, 20))
    d.rectangle([left, top, right, bottom], outline=(180, 180, 180))
    if len(points) >= 2:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if y1 - y0 < 1e-12:
            y0, y1 = y0 - 1, y1 + 1
        pts = [(left + (x - x0) / max(x1 - x0, 1) * (right - left),
                bottom - (y - y0) / (y1 - y0) * (bottom - top)) for x, y in points]
        d.line(pts, fill=(230, 85, 13), width=2)
        d.text((2, top - 4), f"{y1:.3g}", fill=(90, 90, 90))
        d.text((2, bottom - 8), f"{y0:.3g}", fill=(90, 90, 90))
        d.text((left, bottom + 4), f"step {x0}", fill=(90, 90, 90))
        d.text((right - 60, bottom + 4), f"{x1}", fill=(90, 90, 90))
    return img


def curves(run: Path, out: Path) -> None:
    scalars = read_scalars(run)
    tags = [t for t in TAGS if t in scalars] or sorted(scalars)[:6]
    panels = [panel(t, scalars[t]) for t in tags]
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * 300, rows * 190), (255, 255, 255))
    for i, p in enumerate(panels):
        sheet.paste(p, ((i % cols) * 300, (i // cols) * 190))
    sheet.save(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", nargs="?", help="a trained run folder")
    ap.add_argument("--demo", help="run `faceswap-lite demo -o DIR` first and use DIR/run")
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = ap.parse_args()
    if args.demo:
        subprocess.run([sys.executable, "-m", "faceswap_lite", "demo", "-o", args.demo, "--no-progress"], check=True)
        run = Path(args.demo) / "run"
    elif args.run:
        run = Path(args.run)
    else:
        ap.error("give a RUN folder or --demo DIR")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / "previews" / "latest.png", out / "preview.png")
    curves(run, out / "curves.png")
    print(f"wrote {out / 'preview.png'} and {out / 'curves.png'}")


if __name__ == "__main__":
    main()
