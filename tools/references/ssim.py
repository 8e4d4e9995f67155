"""Reference values for the SSIM loss: the peers' per-item SSIM on the shared cases.

Writes, in the layout of tests/losses/common.py ``load_refs`` (per-item SSIM values, not losses, in
float64 and float32 for every case of tools/references/cases.py):

- ``tests/losses/refs/ssim.json``: ``valid`` statistics (Wang et al.'s MATLAB convention),
  ``piq.ssim(x, y, data_range=1., downsample=False, reduction="none")``;
- ``tests/losses/refs/ssim_pytorch_msssim.json``: ``valid`` too,
  ``pytorch_msssim.ssim(x, y, data_range=1., size_average=False)``; it builds its window in float32
  even for float64 images, so its float64 values differ from the exact ones by ~1e-7;
- ``tests/losses/refs/ssim_reflect.json``: ``reflect`` padding (same-size map),
  ``kornia.metrics.ssim(x, y, 11, max_val=1., eps=0., padding="same").mean((1, 2, 3))``: kornia's
  ``"same"`` pads with ``"reflect"`` (the edge pixel not repeated, ``F.pad`` ``reflect``); ``eps=0``
  drops the 1e-12 it otherwise adds to the denominator;
- ``tests/losses/refs/ssim_reflect_torchmetrics.json``: ``reflect`` too,
  ``torchmetrics.functional.structural_similarity_index_measure(x, y, data_range=1., reduction="none")``
  (it reflect-pads by 5 and averages the whole same-size map).

Peer pitfalls avoided here: pytorch-msssim's ``data_range`` defaults to 255 (SSIM ≈ 1 for [0, 1]
images); piq downsamples images whose short side is ≥ 384 unless ``downsample=False``; torchmetrics
infers the data range from each batch unless it is given.

Run from the repository root (needs the [test] extras):

    python tools/references/ssim.py
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import kornia  # noqa: E402
import piq  # noqa: E402
import pytorch_msssim  # noqa: E402
import torchmetrics  # noqa: E402
from torchmetrics.functional import structural_similarity_index_measure  # noqa: E402

from tools.references.cases import case_names  # noqa: E402
from tools.references.common import DTYPES, Peer, per_item, write_refs  # noqa: E402

SETTINGS = {"window_size": 11, "sigma": 1.5, "k1": 0.01, "k2": 0.03, "data_range": 1.0}

PEERS: dict[str, tuple[str, str, Peer]] = {
    "ssim": (
        f"piq {piq.__version__} ssim(downsample=False)", "valid",
        lambda x, y: piq.ssim(x, y, data_range=1.0, downsample=False, reduction="none"),
    ),
    "ssim_pytorch_msssim": (
        f"pytorch-msssim {version('pytorch-msssim')} ssim(data_range=1)", "valid",
        lambda x, y: pytorch_msssim.ssim(x, y, data_range=1.0, size_average=False),
    ),
    "ssim_reflect": (
        f"kornia {kornia.__version__} metrics.ssim(padding='same', eps=0)", "reflect",
        lambda x, y: kornia.metrics.ssim(x, y, 11, max_val=1.0, eps=0.0, padding="same").mean(dim=(1, 2, 3)),
    ),
    "ssim_reflect_torchmetrics": (
        f"torchmetrics {torchmetrics.__version__} structural_similarity_index_measure", "reflect",
        lambda x, y: structural_similarity_index_measure(x, y, data_range=1.0, reduction="none"),
    ),
}


def main() -> None:
    for stem, (peer_name, padding, peer) in PEERS.items():
        cases = {name: {key: per_item(peer, name, dtype) for key, dtype in DTYPES.items()} for name in case_names()}
        write_refs(stem, {"peer": peer_name, "settings": {**SETTINGS, "padding": padding}, "value": "SSIM per item",
                          "cases": cases})


if __name__ == "__main__":
    main()
