"""Reference values for the FFL loss: the official ``focal-frequency-loss`` package on the shared cases.

Writes tests/losses/refs/ffl.json (layout in tests/losses/common.py ``load_refs``). The official
``FocalFrequencyLoss`` returns the batch mean, so per-item values come from calling it on one item
at a time, which is only the same quantity when neither ``batch_matrix`` nor ``ave_spectrum`` is
set. Those two settings couple the items, so their variants store the batch value itself
(``"reduction": "batch_mean"``, a one-element list) and the tests compare the mean of our N values.

Top level: the default settings, every case. ``variants``: non-default settings on the 64- and
99-px cases and ``noisy_128_b4``, same layout plus ``reduction`` (``patch_factor`` 2 and 4 skip the
odd-sized cases, which the package rejects).

Run from the repository root (needs focal-frequency-loss, a [test] extra):

    python tools/references/ffl.py
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from focal_frequency_loss import FocalFrequencyLoss  # noqa: E402

from tools.references.cases import case_names, get_case  # noqa: E402
from tools.references.common import write_refs  # noqa: E402

DTYPES = {"float64": torch.float64, "float32": torch.float32}
PEER = f"focal-frequency-loss {importlib.metadata.version('focal-frequency-loss')}"
VARIANT_SIZES = (64, 99)  # plus noisy_128_b4, which case_names always adds
VARIANTS = (
    {"alpha": 2.0},
    {"patch_factor": 2},
    {"log_matrix": True},
    {"batch_matrix": True},
    {"ave_spectrum": True},
    {"alpha": 0.5, "patch_factor": 4, "log_matrix": True, "batch_matrix": True},
)


def peer_values(settings: dict, name: str, dtype: torch.dtype) -> tuple[str, list[float]]:
    x, y = (torch.from_numpy(a).to(dtype) for a in get_case(name))
    peer = FocalFrequencyLoss(loss_weight=1.0, **settings)
    if settings.get("batch_matrix") or settings.get("ave_spectrum"):
        return "batch_mean", [float(peer(x, y))]
    return "item", [float(peer(x[i : i + 1], y[i : i + 1])) for i in range(x.shape[0])]


def table(settings: dict, sizes: tuple[int, ...] | None = None) -> dict:
    p = settings.get("patch_factor", 1)
    cases: dict[str, dict] = {}
    reduction = "item"
    for name in case_names(sizes) if sizes else case_names():
        size = int(name.rsplit("_", 2)[1])
        if size % p:
            continue
        cases[name] = {}
        for key, dtype in DTYPES.items():
            reduction, cases[name][key] = peer_values(settings, name, dtype)
    return {"peer": PEER, "settings": settings, "reduction": reduction, "cases": cases}


def main() -> None:
    refs = table({})
    refs["variants"] = [table(dict(s), VARIANT_SIZES) for s in VARIANTS]
    write_refs("ffl", refs, f"{len(refs['cases'])} cases, {len(refs['variants'])} variants")


if __name__ == "__main__":
    main()
