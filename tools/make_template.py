"""Derive the mean-face template (faceswap_lite/assets/mean_face_68.json) from real faces.

Method
------
1. Detect every face in the given photos with dlib's HOG detector (upsample 1) and place dlib's 68
   iBUG landmarks on it; faces whose boxes are under ``--min-size`` pixels or score under
   ``--min-score`` are left out. Optionally add small face crops from a ``.npy`` stack (e.g.
   scikit-image's ``lfw_subset.npy``), upscaled to ``--npy-size`` pixels first.
2. Add every shape's mirror image (x -> -x with the iBUG left/right point permutation), so the mean
   is left-right symmetric and no head turn of the sample survives in it.
3. Generalised Procrustes analysis on the inner points 17-67 (the points extract aligns on): align
   every shape to the current mean with Umeyama's similarity transform, average, normalise the mean
   (centre 0, RMS radius 1), repeat until the mean moves less than 1e-9. Shapes that fit the mean
   more than twice as badly as the median one (landmarks gone astray) are dropped, and GPA is re-run.
4. Make the mean exactly symmetric (average it with its aligned mirror) and rotate it so the line
   between the eye centres is level.
5. Express it in template units: one uniform scale and a shift so the bounding box of the inner
   points 17-67 is centred in [0, 1]² and touches it on its longer side.

Usage::

    pip download scikit-image --no-deps -d /tmp/y && cd /tmp/y && unzip -o scikit_image-*.whl \
        skimage/data/lfw_subset.npy && cd -
    python tools/make_template.py tests/photos --npy /tmp/y/skimage/data/lfw_subset.npy --npy-first 100 \
        -o faceswap_lite/assets/mean_face_68.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from faceswap_lite.extract.align import (
    ALIGN_POINTS,
    EYE_IMAGE_LEFT,
    EYE_IMAGE_RIGHT,
    transform_points,
    umeyama,
)
from faceswap_lite.extract.sources import IMAGE_EXTENSIONS
from faceswap_lite.registry import DETECTORS

# iBUG 68-point mirror permutation: index i of a mirrored face is point MIRROR[i] of the original.
MIRROR = np.array(
    list(range(16, -1, -1))  # jaw 0-16
    + list(range(26, 16, -1))  # eyebrows 17-21 <-> 22-26
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nose bottom
    + [45, 44, 43, 42, 47, 46]  # eye 36-41 <-> eye 42-47
    + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48]  # outer lip top
    + [59, 58, 57, 56, 55]  # outer lip bottom
    + [64, 63, 62, 61, 60]  # inner lip top
    + [67, 66, 65]  # inner lip bottom
)
assert sorted(MIRROR.tolist()) == list(range(68))


def mirror(shape: np.ndarray) -> np.ndarray:
    """The mirror image of a 68-point shape (x negated, left/right points swapped)."""
    out = shape[MIRROR].copy()
    out[:, 0] = -out[:, 0]
    return out


def normalise(shape: np.ndarray) -> np.ndarray:
    """Centre the inner points at 0 and scale them to RMS radius 1 (the whole shape moves along)."""
    inner = shape[ALIGN_POINTS]
    centred = shape - inner.mean(0)
    return centred / np.sqrt((centred[ALIGN_POINTS] ** 2).sum(1).mean())


def procrustes_mean(shapes: list[np.ndarray], iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes mean of 68-point shapes, fitted on the inner points.

    Returns (mean (68, 2), per-shape RMS residual of the inner points in normalised units).
    """
    mean = normalise(shapes[0])
    for _ in range(iterations):
        aligned = [transform_points(umeyama(s[ALIGN_POINTS], mean[ALIGN_POINTS]), s) for s in shapes]
        new = normalise(np.mean(aligned, axis=0))
        new = transform_points(umeyama(new[ALIGN_POINTS], mean[ALIGN_POINTS]), new)  # keep orientation
        new = normalise(new)
        moved = np.abs(new - mean).max()
        mean = new
        if moved < 1e-9:
            break
    residual = np.array([np.sqrt(((a - mean)[ALIGN_POINTS] ** 2).sum(1).mean()) for a in aligned])
    return mean, residual


def symmetric_level(mean: np.ndarray) -> np.ndarray:
    """Average ``mean`` with its aligned mirror and rotate it so the eye line is horizontal."""
    m = mirror(mean)
    m = transform_points(umeyama(m[ALIGN_POINTS], mean[ALIGN_POINTS]), m)
    sym = (mean + m) / 2
    left, right = sym[EYE_IMAGE_LEFT].mean(0), sym[EYE_IMAGE_RIGHT].mean(0)
    angle = np.arctan2(right[1] - left[1], right[0] - left[0])
    c, s = np.cos(-angle), np.sin(-angle)
    return sym @ np.array([[c, -s], [s, c]]).T


def to_template_units(shape: np.ndarray) -> np.ndarray:
    """Scale uniformly and translate so the inner points' bounding box is centred in [0, 1]²
    and touches it on its longer side (the unit extract.align's crop geometry is defined in)."""
    inner = shape[ALIGN_POINTS]
    lo, hi = inner.min(0), inner.max(0)
    return (shape - (lo + hi) / 2) / (hi - lo).max() + 0.5


def faces_in_images(paths: list[Path], min_size: float, min_score: float) -> tuple[list[np.ndarray], list[str]]:
    detector = DETECTORS.build("dlib-hog", {"upsample": 1})
    shapes, used = [], []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"skip {path}: unreadable", file=sys.stderr)
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        for det in detector.detect(rgb):
            x0, y0, x1, y1 = det.box
            if min(x1 - x0, y1 - y0) < min_size or det.score < min_score:
                continue
            shapes.append(detector.landmarks(rgb, det.box).astype(np.float64))
            used.append(f"{path.name} box={[round(v) for v in det.box]} score={det.score:.2f}")
    return shapes, used


def faces_in_npy(path: Path, size: int, min_score: float, first: int | None) -> tuple[list[np.ndarray], int]:
    stack = np.load(path)[:first]
    detector = DETECTORS.build("dlib-hog", {"upsample": 0})
    shapes, n = [], 0
    for img in stack:
        img = np.asarray(img)
        if img.dtype != np.uint8:
            img = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        rgb = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
        dets = [d for d in detector.detect(rgb) if d.score >= min_score]
        if len(dets) == 1:
            shapes.append(detector.landmarks(rgb, dets[0].box).astype(np.float64))
            n += 1
    return shapes, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", type=Path, help="photos or folders of photos")
    ap.add_argument("--npy", type=Path, help="optional .npy stack of small face crops (N×H×W[×3])")
    ap.add_argument("--npy-size", type=int, default=200, help="upscale the .npy crops to this size")
    ap.add_argument("--npy-first", type=int,
                    help="use only the first N crops (lfw_subset.npy: 100 faces, then 100 non-faces)")
    ap.add_argument("--min-size", type=float, default=60.0, help="smallest face box side to use (pixels)")
    ap.add_argument("--min-score", type=float, default=0.5, help="lowest HOG score to use")
    ap.add_argument("-o", "--output", type=Path, default=Path("faceswap_lite/assets/mean_face_68.json"))
    args = ap.parse_args(argv)

    paths: list[Path] = []
    for p in args.inputs:
        if p.is_dir():
            paths += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            paths.append(p)
    shapes, used = faces_in_images(paths, args.min_size, args.min_score)
    n_photo = len(shapes)
    n_npy = 0
    if args.npy is not None:
        more, n_npy = faces_in_npy(args.npy, args.npy_size, args.min_score, args.npy_first)
        shapes += more
    if not shapes:
        print("no faces found", file=sys.stderr)
        return 1
    both = shapes + [mirror(s) for s in shapes]
    mean, residual = procrustes_mean(both)
    outliers = residual > 2.0 * np.median(residual)  # landmarks gone astray: leave them out, fit again
    if outliers.any():
        both = [s for s, bad in zip(both, outliers) if not bad]
        mean, residual = procrustes_mean(both)
    template = to_template_units(symmetric_level(mean))
    left, right = template[EYE_IMAGE_LEFT].mean(0), template[EYE_IMAGE_RIGHT].mean(0)
    doc = {
        "description": "68-point iBUG mean face for alignment. Units: the bounding box of points 17-67 "
                       "is centred in [0, 1]^2 and touches it on its longer side (x right, y down). "
                       "Derived by tools/make_template.py (generalised Procrustes mean of real faces and "
                       "their mirror images, symmetrised, eye line level).",
        "made": dt.date.today().isoformat(),
        "faces": {"photos": n_photo, "npy": n_npy, "outliers_dropped": int(outliers.sum()),
                  "used_with_mirrors": len(both)},
        "photo_faces": used,
        "npy_source": str(args.npy.name) if args.npy is not None else None,
        "gpa_rms_residual": {"median": round(float(np.median(residual)), 4),
                             "max": round(float(residual.max()), 4),
                             "units": "normalised shape (inner points RMS radius 1)"},
        "eye_centres": [[round(float(v), 5) for v in left], [round(float(v), 5) for v in right]],
        "align_points": [ALIGN_POINTS.start, ALIGN_POINTS.stop - 1],
        "points": [[round(float(x), 5), round(float(y), 5)] for x, y in template],
    }
    args.output.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {n_photo} photo faces + {n_npy} npy faces (x2 mirrored); "
          f"GPA residual median {np.median(residual):.4f}, max {residual.max():.4f}")
    print(f"eye centres {doc['eye_centres']}; chin (pt 8) at {template[8].round(3).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
