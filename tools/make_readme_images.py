"""Make the README's pictures from a real run: the preview grid and the loss curves.

    python tools/make_readme_images.py RUN_DIR        # e.g. the folder `faceswap-lite demo` trained
    python tools/make_readme_images.py --demo DIR     # run the demo into DIR first (a few minutes)

Writes docs/img/preview.png (the run's latest preview grid), docs/img/curves.png (the scalars
of the run's TensorBoard event files, read back with tensorboard's own EventAccumulator and drawn
with matplotlib, as compare's curves.png: one panel per tag) and, when the run sits in a demo
folder, docs/img/convert.png (a frame of the demo's clip beside the same frame as `convert` wrote
it, decoded with the project's own video reader).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from faceswap_lite.evaluate.report import plot_curves
from faceswap_lite.runfolder import read_scalars

ROOT = Path(__file__).resolve().parents[1]
TAGS = ("loss/total", "loss/a/ssim", "loss/a/mae", "lr", "val/a/psnr", "val/a/ssim")


def curves(run: Path, out: Path) -> None:
    scalars = read_scalars(run)
    tags = [t for t in TAGS if t in scalars] or sorted(scalars)[:6]
    plot_curves({run.name: scalars}, tags, out, title="training and validation scalars (TensorBoard)")


def before_after(demo: Path, out: Path) -> bool:
    """The middle frame of DEMO/sample_clip.avi beside the same frame of DEMO/converted/sample_clip.avi."""
    import numpy as np
    from PIL import Image, ImageDraw

    from faceswap_lite.convert.video import VideoSource

    src, conv = demo / "sample_clip.avi", demo / "converted" / "sample_clip.avi"
    if not (src.is_file() and conv.is_file()):
        return False
    a, b = ([rgb for _, rgb in VideoSource(p)] for p in (src, conv))
    i = len(a) // 2
    pair = np.concatenate([a[i], np.full((a[i].shape[0], 8, 3), 255, np.uint8), b[i]], axis=1)
    img = Image.fromarray(pair)
    draw = ImageDraw.Draw(img)
    for x, label in ((6, "source frame"), (a[i].shape[1] + 14, "convert (the trained model, blended)")):
        draw.text((x, 6), label, fill=(255, 255, 0))
    img.save(out)
    return True


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
    if before_after(run.parent, out / "convert.png"):
        print(f"wrote {out / 'convert.png'}")


if __name__ == "__main__":
    main()
