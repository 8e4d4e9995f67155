"""Reference values for the GMSD loss: piq's ``gmsd`` on the shared cases.

Writes tests/losses/refs/gmsd.json (layout in tests/losses/common.py ``load_refs``): per-item
values of ``piq.gmsd(x, y, reduction="none", data_range=1.0)`` in float64 and float32 for every case
of tools/references/cases.py. piq's values are finite on every case; its gradient is not (NaN for
identical and constant images and wherever an image is flat), so each case also records
``peer_grad_finite`` per dtype, which the tests use to show the difference.

Run from the repository root (needs piq, a [test] extra):

    python tools/references/gmsd.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import piq  # noqa: E402
import torch  # noqa: E402

from tools.references.cases import case_names, get_case  # noqa: E402
from tools.references.common import write_refs  # noqa: E402

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def peer_values(name: str, dtype: torch.dtype) -> tuple[list[float], bool]:
    """piq's per-item GMSD for one case, and whether piq's gradient w.r.t. x is finite."""
    x, y = (torch.from_numpy(a).to(dtype) for a in get_case(name))
    x.requires_grad_(True)
    value = piq.gmsd(x, y, reduction="none", data_range=1.0)
    value.sum().backward()
    values = value.detach().double().tolist()
    if not all(math.isfinite(v) for v in values):
        raise RuntimeError(f"piq gave a non-finite value on {name} ({dtype}): {values}")
    return values, bool(torch.isfinite(x.grad).all())


def main() -> None:
    cases: dict[str, dict] = {}
    for name in case_names():
        entry: dict = {"peer_grad_finite": {}}
        for key, dtype in DTYPES.items():
            entry[key], entry["peer_grad_finite"][key] = peer_values(name, dtype)
        cases[name] = entry
    refs = {
        "peer": f"piq {piq.__version__}",
        "settings": {"data_range": 1.0, "t": 170 / 255**2},
        "cases": cases,
    }
    nan_grads = sorted(n for n, e in cases.items() if not all(e["peer_grad_finite"].values()))
    write_refs("gmsd", refs, f"{len(cases)} cases; piq's gradient is NaN on {len(nan_grads)}: {', '.join(nan_grads)}")


if __name__ == "__main__":
    main()
