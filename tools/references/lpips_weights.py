"""LPIPS weights without a download: the peer with a seeded random trunk, saved trunks, fingerprints.

``lpips.LPIPS(net=..., pnet_rand=True)`` right after ``torch.manual_seed(SEED)`` builds the package's
trunk with torchvision's random initialisation (no ImageNet weights, no download) and loads the
linear layers shipped in the wheel. The same seed gives the same trunk in the tests and in
``tools/references/lpips.py`` (the stored reference values); the fingerprint stored next to those
values tells whether this machine and torch version still draw the same trunk.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path

import lpips
import torch
from torch import nn

SEED = 0
PEER = f"lpips {importlib.metadata.version('lpips')}"


def seeded_peer(net: str = "alex", seed: int = SEED, spatial: bool = False) -> lpips.LPIPS:
    """``lpips.LPIPS(net, version='0.1', pnet_rand=True)`` with the trunk drawn after ``manual_seed(seed)``.

    The global RNG state is restored afterwards, so other tests are not affected.
    """
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation of lpips's pretrained= argument
        torch.manual_seed(seed)
        return lpips.LPIPS(net=net, version="0.1", pnet_rand=True, spatial=spatial, verbose=False)


def save_trunk(peer: lpips.LPIPS, path: str | Path) -> Path:
    """Save the peer's trunk state dict (lpips keys ``slice1.0.weight``...) as a user would."""
    path = Path(path)
    torch.save(peer.net.state_dict(), path)
    return path


def trunk_fingerprint(trunk: nn.Module) -> dict[str, list[float]]:
    """Per tensor: [sum, sum of |w|] in float64. Equal to ~1e-12 (summation order) for the same trunk, O(1) apart for another."""
    out = {}
    for key, value in trunk.state_dict().items():
        v = value.detach().double()
        out[key] = [v.sum().item(), v.abs().sum().item()]
    return out


def same_fingerprint(a: dict[str, list[float]], b: dict[str, list[float]], rtol: float = 1e-6) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        for u, v in zip(a[key], b[key]):
            if abs(u - v) > rtol * max(abs(u), abs(v), 1e-12):
                return False
    return True
