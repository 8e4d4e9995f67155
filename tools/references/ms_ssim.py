"""Reference values for the MS-SSIM loss: the peers' per-item MS-SSIM on the shared cases.

Writes, in the layout of tests/losses/common.py ``load_refs`` (per-item MS-SSIM values, not losses,
in float64 and float32):

- ``tests/losses/refs/ms_ssim.json``: the canonical settings (window 11, σ 1.5, 5 scales) on the
  cases large enough for them (176 and 256 px),
  ``piq.multi_scale_ssim(x, y, data_range=1., reduction="none")``;
- ``tests/losses/refs/ms_ssim_pytorch_msssim.json``: the same cases,
  ``pytorch_msssim.ms_ssim(x, y, data_range=1., size_average=False)`` (``data_range`` defaults to
  255 there). Its window is built in float32 even for float64 images: its float64 values differ
  from the exact ones by up to ~1e-5 relative where MS-SSIM is small;
- ``tests/losses/refs/ms_ssim_scales3.json``: 3 scales (for 41–160 px faces) on the 64, 99 and
  128 px cases, piq with ``scale_weights`` = the first three published weights (piq renormalises
  them, as the loss does). On an odd side piq replicates the *first* row / column before halving,
  while MATLAB ``msssim.m`` / TF ``ssim_multiscale`` (and the loss) replicate the last: piq is given
  the images rotated by 180°, which turns one into the other and leaves every SSIM statistic
  unchanged (the window is symmetric). pytorch-msssim zero-pads odd sides: not used there.

Run from the repository root (needs the [test] extras):

    python tools/references/ms_ssim.py
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import piq  # noqa: E402
import pytorch_msssim  # noqa: E402
import torch  # noqa: E402

from tools.references.cases import case_names  # noqa: E402
from tools.references.common import DTYPES, Peer, per_item, write_refs  # noqa: E402

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli, Bovik 2003
SETTINGS = {"window_size": 11, "sigma": 1.5, "k1": 0.01, "k2": 0.03, "data_range": 1.0}


def _piq_scales3(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(WEIGHTS[:3], dtype=x.dtype)
    return piq.multi_scale_ssim(x.flip(-2, -1), y.flip(-2, -1), data_range=1.0, reduction="none", scale_weights=w)


PEERS: dict[str, tuple[str, dict, tuple[int, ...], Peer]] = {
    "ms_ssim": (
        f"piq {piq.__version__} multi_scale_ssim", {**SETTINGS, "scales": 5}, (176, 256),
        lambda x, y: piq.multi_scale_ssim(x, y, data_range=1.0, reduction="none"),
    ),
    "ms_ssim_pytorch_msssim": (
        f"pytorch-msssim {version('pytorch-msssim')} ms_ssim(data_range=1)",
        {**SETTINGS, "scales": 5}, (176, 256),
        lambda x, y: pytorch_msssim.ms_ssim(x, y, data_range=1.0, size_average=False),
    ),
    "ms_ssim_scales3": (
        f"piq {piq.__version__} multi_scale_ssim(scale_weights=first 3) on 180°-rotated images",
        {**SETTINGS, "scales": 3}, (64, 99, 128), _piq_scales3,
    ),
}


def main() -> None:
    for stem, (peer_name, settings, sizes, peer) in PEERS.items():
        names = [n for n in case_names() if int(n.rsplit("_", 2)[1]) in sizes]
        cases = {name: {key: per_item(peer, name, dtype) for key, dtype in DTYPES.items()} for name in names}
        write_refs(stem, {"peer": peer_name, "settings": settings, "value": "MS-SSIM per item", "cases": cases})


if __name__ == "__main__":
    main()
