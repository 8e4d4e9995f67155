"""What the reference scripts share: a peer's per-item values on one case, and writing a refs file.

The files land in tests/losses/refs/ in the layout tests/losses/common.py ``load_refs`` reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tools.references.cases import get_case

ROOT = Path(__file__).resolve().parents[2]
REFS = ROOT / "tests" / "losses" / "refs"
DTYPES = {"float64": torch.float64, "float32": torch.float32}

Peer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def per_item(peer: Peer, name: str, dtype: torch.dtype) -> list[float]:
    """``peer``'s N values on case ``name`` in ``dtype``; an error unless N finite values."""
    x, y = (torch.from_numpy(a).to(dtype) for a in get_case(name))
    with torch.no_grad():
        values = peer(x, y).double()
    if values.shape != (x.shape[0],) or not torch.isfinite(values).all():
        raise RuntimeError(f"{name} ({dtype}): peer gave {values}")
    return values.tolist()


def write_refs(stem: str, refs: dict[str, Any], summary: str | None = None) -> Path:
    """Write ``refs`` as tests/losses/refs/<stem>.json and say so (``summary``, or its case count and peer)."""
    out = REFS / f"{stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(refs, indent=1) + "\n")
    summary = summary or f"{len(refs['cases'])} cases ({refs['peer']})"
    print(f"wrote {out.relative_to(ROOT)}: {summary}")
    return out
