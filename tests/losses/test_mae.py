"""MAE: the map's mean equals torch.nn.L1Loss; gradcheck (the contract: tests/losses/test_contract.py)."""

from __future__ import annotations

import torch

from faceswap_lite.plugins.losses.mae import MAE
from tools.references.cases import case_names

from .common import case_tensors, check_gradcheck


def test_gradcheck():
    check_gradcheck(MAE())


def test_matches_l1loss_on_every_case():
    loss = MAE()
    for name in case_names():
        for dtype in (torch.float64, torch.float32):
            x, y = case_tensors(name, dtype)
            ours = loss(x, y).flatten(1).mean(1)
            ref = torch.stack([torch.nn.L1Loss()(x[i], y[i]) for i in range(x.shape[0])])
            torch.testing.assert_close(ours, ref, rtol=1e-6 if dtype == torch.float64 else 1e-5, atol=0)
