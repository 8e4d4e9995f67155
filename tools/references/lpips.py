"""Reference values for the LPIPS loss: the ``lpips`` package itself, with a seeded random trunk.

Writes tests/losses/refs/lpips.json (layout in tests/losses/common.py ``load_refs``). There is no
internet here or in CI, so the trunk is not torchvision's ImageNet one: it is the package's own
network built with ``pnet_rand=True`` right after ``torch.manual_seed(0)`` (tools/references/lpips_weights.py),
with the v0.1 linear layers shipped in the wheel. The test draws the same trunk from the same seed;
``trunk_fingerprint`` (per tensor: sum and sum of |w|) tells it whether this machine and torch
version still draw the same one. Values are ``lpips.LPIPS(...)(x, y, normalize=True)`` per item.

Top level: net ``alex`` (the default), every case. ``map_mean``: the mean of the package's
``spatial=True`` map on the 64 and 99 px cases. ``nets``: ``squeeze`` and ``vgg``, same layout, on the
64 px cases only (vgg is heavy on a CPU).

Run from the repository root:

    python tools/references/lpips.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# Run as a script, this file's folder comes first on sys.path and its name would hide the package.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import torch  # noqa: E402

from tools.references.cases import case_names, get_case  # noqa: E402
from tools.references.common import write_refs  # noqa: E402
from tools.references.lpips_weights import PEER, SEED, seeded_peer, trunk_fingerprint  # noqa: E402

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def values(peer: torch.nn.Module, names: list[str], reduce_map: bool = False) -> dict[str, dict[str, list[float]]]:
    cases: dict[str, dict[str, list[float]]] = {}
    for name in names:
        cases[name] = {}
        for key, dtype in DTYPES.items():
            x, y = (torch.from_numpy(a).to(dtype) for a in get_case(name))
            with torch.no_grad():
                out = peer.to(dtype)(x, y, normalize=True)
            out = out.mean(dim=(1, 2, 3)) if reduce_map else out.flatten()
            cases[name][key] = [float(v) for v in out]
    return cases


def table(net: str, names: list[str]) -> dict:
    peer = seeded_peer(net)
    return {"peer": PEER, "settings": {"net": net, "version": "0.1", "normalize": True},
            "trunk": f"lpips pnet_rand=True after torch.manual_seed({SEED}) (torch {torch.__version__})",
            "seed": SEED, "trunk_fingerprint": trunk_fingerprint(peer.net), "cases": values(peer, names)}


def main() -> None:
    refs = table("alex", case_names())
    small = [n for n in case_names() if "_64_" in n or "_99_" in n]
    refs["map_mean"] = {"peer": PEER + " spatial=True, map mean", "cases": values(seeded_peer("alex", spatial=True),
                                                                                 small, reduce_map=True)}
    refs["nets"] = {net: table(net, [n for n in case_names((64,)) if "_64_" in n]) for net in ("squeeze", "vgg")}
    write_refs("lpips", refs, f"alex {len(refs['cases'])} cases, map {len(refs['map_mean']['cases'])}, "
               + ", ".join(f"{k} {len(v['cases'])}" for k, v in refs["nets"].items()))


if __name__ == "__main__":
    main()
