"""Reference values for the LPL loss: a deliberately plain NumPy implementation of its definition.

There is no installable peer (faceswap's LaplacianPyramidLoss lives inside its application), so
this script computes docs/LOSSES.md's definition independently of the plugin: an explicit 2-D
Gaussian window (not separable), edge padding with ``np.pad(mode="edge")``, the window applied by
looping over its taps, a 2×2 mean by looping over the four offsets (an odd last row/column is
dropped, like ``F.avg_pool2d`` and faceswap), and two pyramids, one per image (the plugin builds one
for the difference). Per item:

    G_0 = image;  L_j = G_j − blur(G_j),  G_{j+1} = avgpool2(blur(G_j))  (j = 0..4);  L_5 = G_5
    LPL = Σ_{j=0..5} 4^(−j) · mean |L_j(x) − L_j(y)|

Writes tests/losses/refs/lpl.json (layout in tests/losses/common.py ``load_refs``): every case of
tools/references/cases.py, computed in float64 and, with float32 arrays throughout, in float32.

Run from the repository root (NumPy only):

    python tools/references/lpl.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tools.references.cases import case_names, get_case  # noqa: E402
from tools.references.common import write_refs  # noqa: E402

SETTINGS = {"levels": 5, "sigma": 1.0, "kernel_size": 5}  # faceswap's code defaults
DTYPES = {"float64": np.float64, "float32": np.float32}


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    """size×size window exp(−(i² + j²) / 2σ²), normalised to sum 1 (float64)."""
    r = size // 2
    window = np.empty((size, size))
    for i in range(size):
        for j in range(size):
            window[i, j] = math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2 * sigma**2))
    return window / window.sum()


def blur(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """C×H×W image filtered by the window per channel, edge-replicated borders, same size."""
    r = window.shape[0] // 2
    h, w = image.shape[1:]
    padded = np.pad(image, ((0, 0), (r, r), (r, r)), mode="edge")
    out = np.zeros_like(image)
    for i in range(window.shape[0]):
        for j in range(window.shape[1]):
            out += window[i, j] * padded[:, i : i + h, j : j + w]
    return out


def avgpool2(image: np.ndarray) -> np.ndarray:
    """C×H×W → C×⌊H/2⌋×⌊W/2⌋: the mean of each 2×2 block (an odd last row/column is dropped)."""
    h, w = image.shape[1] // 2, image.shape[2] // 2
    out = np.zeros((image.shape[0], h, w), dtype=image.dtype)
    for di in (0, 1):
        for dj in (0, 1):
            out += image[:, di : 2 * h : 2, dj : 2 * w : 2]
    return out / 4


def pyramid(image: np.ndarray, window: np.ndarray, levels: int) -> list[np.ndarray]:
    bands = []
    g = image
    for _ in range(levels):
        b = blur(g, window)
        bands.append(g - b)
        g = avgpool2(b)
    bands.append(g)
    return bands


def lpl_item(x: np.ndarray, y: np.ndarray, levels: int, sigma: float, kernel_size: int) -> float:
    """LPL of one pair of C×H×W images, in their dtype."""
    window = gaussian_window(kernel_size, sigma).astype(x.dtype)
    total = 0.0
    for j, (bx, by) in enumerate(zip(pyramid(x, window, levels), pyramid(y, window, levels))):
        total += 4.0**-j * float(np.mean(np.abs(bx - by)))
    return total


def main() -> None:
    cases: dict[str, dict] = {}
    for name in case_names():
        x, y = get_case(name)
        cases[name] = {
            key: [lpl_item(x[i].astype(dt), y[i].astype(dt), **SETTINGS) for i in range(x.shape[0])]
            for key, dt in DTYPES.items()
        }
    refs = {"peer": "plain NumPy reference (tools/references/lpl.py)", "settings": SETTINGS, "cases": cases}
    write_refs("lpl", refs, f"{len(cases)} cases")


if __name__ == "__main__":
    main()
