"""Checks every loss plugin must pass, shared by the per-loss test files.

Each helper takes a loss module (an ``nn.Module`` following the loss contract) and fails with a
message naming what broke.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from faceswap_lite.losses import ITEM, MAP, output_kind
from tools.references.cases import KINDS, case_names, get_case

REFS = Path(__file__).parent / "refs"

# Ops that copy a device value to the host (a sync on GPU): .item(), bool(tensor), nonzero, equal.
SYNC_OPS = ("_local_scalar_dense", "is_nonzero", "nonzero", "equal", "allclose")


class _RecordOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.ops.append(func.__name__)
        return func(*args, **(kwargs or {}))


def ops_called(fn, *args) -> list[str]:  # noqa: ANN001
    with _RecordOps() as rec:
        fn(*args)
    return rec.ops


def case_tensors(name: str, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = get_case(name)
    return torch.from_numpy(x).to(dtype), torch.from_numpy(y).to(dtype)


def check_shape(loss: torch.nn.Module, x: torch.Tensor, out: torch.Tensor) -> None:
    n, c, h, w = x.shape
    kind = output_kind(loss)
    if kind == ITEM:
        assert out.shape == (n,), f"per-item loss returned {tuple(out.shape)}, expected ({n},)"
    else:
        assert kind == MAP
        assert out.dim() == 4 and out.shape[0] == n and out.shape[1] in (1, c), f"bad map shape {tuple(out.shape)}"
        dh, dw = h - out.shape[2], w - out.shape[3]
        assert dh >= 0 and dw >= 0 and dh % 2 == 0 and dw % 2 == 0, f"map {tuple(out.shape)} vs input {(h, w)}"


def check_identical_zero(loss: torch.nn.Module, size: int = 64, atol: float = 1e-6) -> None:
    for dtype in (torch.float32, torch.float64):
        x, _ = case_tensors(f"noisy_{size}_b4" if size == 64 else f"noisy_{size}_b1", dtype)
        out = loss(x, x.clone())
        check_shape(loss, x, out)
        assert out.dtype == dtype, f"{dtype} input gave {out.dtype} output"
        assert torch.all(out.abs() <= atol), f"identical inputs gave {out.abs().max().item()} (dtype {dtype})"


def check_finite_gradients(loss: torch.nn.Module, sizes: tuple[int, ...] = (64,), dtype=torch.float32) -> None:
    """Value and gradient finite on every kind of case (identical, constant, anti-correlated...)."""
    for size in sizes:
        for kind in KINDS:
            name = f"{kind}_{size}_b{4 if size == 64 else 1}"
            x, y = case_tensors(name, dtype)
            x.requires_grad_(True)
            out = loss(x, y)
            assert torch.isfinite(out).all(), f"{name}: non-finite value {out}"
            out.sum().backward()
            assert x.grad is not None and torch.isfinite(x.grad).all(), f"{name}: non-finite gradient"


def check_gradcheck(loss: torch.nn.Module, shape: tuple[int, ...] = (1, 3, 8, 8), seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: loss(a, y), (x,), eps=1e-6, atol=1e-5, rtol=1e-3)


def check_autocast_fp32(loss: torch.nn.Module, size: int = 64, rtol: float = 1e-5) -> None:
    """Under CPU bf16 autocast, a float32 input still gives float32 statistics (same value)."""
    x, y = case_tensors(f"noisy_{size}_b4" if size == 64 else f"noisy_{size}_b1", torch.float32)
    ref = loss(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = loss(x, y)
        out_bf = loss(x.bfloat16(), y.bfloat16())
    assert out.dtype == torch.float32, f"autocast output dtype {out.dtype}"
    torch.testing.assert_close(out, ref, rtol=rtol, atol=1e-6)
    assert out_bf.dtype == torch.float32, f"bf16 input gave {out_bf.dtype}: statistics must be float32"


def check_channels_last(loss: torch.nn.Module, size: int = 64) -> None:
    x, y = case_tensors(f"noisy_{size}_b4" if size == 64 else f"noisy_{size}_b1", torch.float32)
    ref = loss(x, y)
    out = loss(x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def check_no_host_sync(loss: torch.nn.Module, size: int = 64) -> None:
    x, y = case_tensors(f"noisy_{size}_b4" if size == 64 else f"noisy_{size}_b1", torch.float32)
    ops = ops_called(loss, x, y)
    bad = sorted({o.split(".")[0] for o in ops if o.split(".")[0] in SYNC_OPS})
    assert not bad, f"forward reads values back to the host: {bad}"


def load_refs(loss_name: str) -> dict:
    """Stored peer values written by ``tools/references/<loss>.py`` (see tools/make_loss_references.py).

    Layout: {"peer": "name version", "settings": {...},
             "cases": {case_name: {"float64": [per-item], "float32": [per-item]}}}
    """
    path = REFS / f"{loss_name}.json"
    return json.loads(path.read_text())


def compare_to_refs(per_item, refs: dict, dtype_key: str, rtol: float, atol: float = 0.0,  # noqa: ANN001
                    cases: list[str] | None = None) -> int:
    """Check ``per_item(x, y) -> N values`` against every stored case; return the count checked."""
    dtype = torch.float64 if dtype_key == "float64" else torch.float32
    n = 0
    for name in cases or case_names():
        if name not in refs["cases"] or dtype_key not in refs["cases"][name]:
            continue
        x, y = case_tensors(name, dtype)
        ours = per_item(x, y).detach().double().numpy()
        theirs = np.asarray(refs["cases"][name][dtype_key], dtype=np.float64)
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol,
                                   err_msg=f"{name} ({dtype_key}) vs {refs['peer']}")
        n += 1
    assert n > 0, "no reference case was checked"
    return n
