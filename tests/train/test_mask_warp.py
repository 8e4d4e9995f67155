"""Learned masks and the no-warp finish through the real CLI and the trainer: the mask term, its
logs and validation IoU, the grid's mask column, the switch from warped to plain inputs at its step
(and after a resume), and device-side augmentation resuming exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from faceswap_lite.runfolder import read_scalars
from faceswap_lite.train.checkpoint import load_checkpoint, load_run_model
from faceswap_lite.train.preview import HEADER
from tools.synthetic_faces import make_face_set

from ..helpers import TINY_SAE, TINY_SAE_SETTINGS, run_cli, sets
from .test_train import TINY, TINY_RUN


def train(faces, run, extra, sides="AB"):
    args = ["train", "-o", str(run)]
    for s in sides:
        args += [f"-{s}", str(faces / s)]
    return run_cli([*args, *sets(TINY_RUN + extra)])


def test_mask_terms_logged_weighted_and_shown(faces, tmp_path):
    run = tmp_path / "run"
    train(faces, run, TINY_SAE + ["model.arch=df", "train.steps=2", "mask.learn_weight=2.5"])
    tags = read_scalars(run)
    for s in "ab":
        for step_u, step_w in zip(tags[f"loss/{s}/mask"], tags[f"loss_weighted/{s}/mask"]):
            assert step_w[1] == pytest.approx(2.5 * step_u[1], rel=1e-5)
        assert 0.0 <= tags[f"val/{s}/mask_iou"][-1][1] <= 1.0
    # The grid gains one mask column per side (A->B MASK, B->A MASK), in grey.
    img = np.asarray(Image.open(run / "previews" / "latest.png"))
    assert img.shape == (HEADER + 3 * 64, 8 * 64, 3)
    mask_col = img[HEADER:, 3 * 64:4 * 64].astype(int)
    assert (mask_col[..., 0] == mask_col[..., 1]).all() and (mask_col[..., 1] == mask_col[..., 2]).all()
    out = tmp_path / "grid.png"
    res = run_cli(["preview", str(run), "-n", "2", "-o", str(out)])
    assert "checkpoint step 2" in res.output
    assert Image.open(out).size == (8 * 64, HEADER + 2 * 64)
    loaded = load_run_model(run, "cpu")
    assert loaded.learns_mask and loaded.step == 2 and not loaded.model.training


def test_learn_mask_false_has_no_mask_terms(faces, tmp_path):
    run = tmp_path / "run"
    train(faces, run, TINY_SAE + ["model.learn_mask=false", "train.steps=2"], "A")
    tags = read_scalars(run)
    assert "loss/a/ssim" in tags and not any("mask" in t for t in tags), sorted(tags)
    assert Image.open(run / "previews" / "latest.png").size == (2 * 64, HEADER + 3 * 64)


def test_learn_mask_needs_the_face_mask(faces, tmp_path):
    res = run_cli(["train", "-A", str(faces / "A"), "-o", str(tmp_path / "r"),
                   *sets(TINY_RUN + TINY_SAE + ["mask.face=false"])], expect=2)
    assert "set mask.face = true or model.learn_mask = false" in res.output
    assert not (tmp_path / "r").exists()


def test_mask_iou_rises(tmp_path):
    """On a synthetic face set the mask head learns the landmark mask within a few dozen CPU steps."""
    root = tmp_path / "faces"
    make_face_set(root, 24, size=64, seed=3)
    run = tmp_path / "run"
    run_cli(["train", "-A", str(root), "-o", str(run),
             *sets(TINY_RUN + TINY_SAE + ["train.steps=24", "train.eval_every=4", "train.lr=3e-3",
                                          "data.val_fraction=0.2", "train.log_every=24",
                                          "train.save_every=24", "train.preview_every=24"])])
    iou = [v for _, v in read_scalars(run)["val/a/mask_iou"]]
    assert len(iou) == 6  # measured: 0.20 at step 4, 0.86 at step 24
    assert iou[-1] > 0.7 and iou[-1] > iou[0] + 0.3, iou


def test_no_warp_switch_at_its_step_and_after_resume(faces, tmp_path):
    from faceswap_lite.config import load_config
    from faceswap_lite.train.trainer import train as train_fn

    base = TINY + ["train.steps=6", "augment.warp=1.0", "augment.warp_strength=0.2"]
    run_cli(["train", "-A", str(faces / "A"), "-o", str(tmp_path / "warped"), *sets(base)])
    run_cli(["train", "-A", str(faces / "A"), "-o", str(tmp_path / "switch"),
             *sets(base + ["augment.warp_until=0.5"])])
    warped = [v for _, v in read_scalars(tmp_path / "warped")["loss/total"]]
    switch = [v for _, v in read_scalars(tmp_path / "switch")["loss/total"]]
    # warp_until = 0.5 of 6 steps = step 3: steps 0-2 (logged as 1-3) are the same, step 3 on differ.
    np.testing.assert_allclose(switch[:3], warped[:3], rtol=1e-6)
    assert abs(switch[3] - warped[3]) > 1e-4
    assert load_checkpoint(tmp_path / "switch" / "checkpoints" / "last.pt")["warp_until"] == 3

    # Stopped at step 2, resumed with train.steps = 10 up to step 6: the recorded step 3 is kept (0.5 of
    # 10 would be 5), so the resumed run matches the uninterrupted one (no lr drops: steps change nothing else).
    cfg = load_config(tmp_path / "switch" / "config.toml")
    resumed = tmp_path / "resumed"
    train_fn(cfg, {"a": faces / "A"}, resumed, max_steps=2, progress=False)
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["warp_until"] == 3
    longer = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=10))
    train_fn(longer, {"a": faces / "A"}, resumed, resume=True, max_steps=4, progress=False)
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["warp_until"] == 3
    again = [v for _, v in read_scalars(resumed)["loss/total"]]
    np.testing.assert_allclose(again, switch, rtol=1e-5)


def test_device_augmentation_without_warp_skips_it_and_keeps_the_rest():
    """augment_batch(warp=False), the trainer's call after warp_until: the input is the target itself,
    and the target and masks are those of the warped call (the same parameters drive both)."""
    from faceswap_lite.config import AugmentConfig, MaskConfig
    from faceswap_lite.data.augment import sample_rng
    from faceswap_lite.data.device_augment import augment_batch, draw_params
    from tools.synthetic_faces import draw_face, template_landmarks

    size, cfg = 64, AugmentConfig(warp=1.0, warp_strength=0.2)
    image = draw_face(np.random.default_rng(0), size, template_landmarks(size))
    planes = np.zeros((2, 4, size, size), np.uint8)
    planes[:, :, 8:56, 8:56] = 255
    raw = {"image": torch.from_numpy(np.stack([image, image])), "masks": torch.from_numpy(planes),
           "params": torch.from_numpy(np.stack([draw_params(sample_rng(0, 0, k), size, cfg) for k in (0, 1)]))}
    warped = augment_batch(raw, cfg, MaskConfig(), "cpu")
    plain = augment_batch(raw, cfg, MaskConfig(), "cpu", warp=False)
    assert not torch.allclose(warped["input"], warped["target"], atol=1e-3)
    assert plain["input"] is plain["target"]
    for k in ("target", "face", "eyes", "mouth"):
        torch.testing.assert_close(plain[k], warped[k])


def test_device_augmentation_trains_and_resumes_exactly(faces, tmp_path):
    base = ["train", "-A", str(faces / "A"), "-B", str(faces / "B")]
    args = TINY_RUN + TINY_SAE + ["train.steps=4", "data.augment_on=device", "augment.warp=1.0"]
    run_cli(base + ["-o", str(tmp_path / "straight"), *sets(args)])
    run_cli(base + ["-o", str(tmp_path / "resumed"), *sets(args + ["train.steps=2"])])
    run_cli(base + ["-o", str(tmp_path / "resumed"), "--resume", *sets(args)])
    a, b = read_scalars(tmp_path / "straight"), read_scalars(tmp_path / "resumed")
    assert [s for s, _ in b["loss/total"]] == [1, 2, 3, 4]
    assert all(np.isfinite(v) for _, v in a["loss/total"])
    np.testing.assert_allclose([v for _, v in b["loss/total"]], [v for _, v in a["loss/total"]], rtol=1e-5)
    sa = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")["model"]
    sb = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["model"]
    assert all(torch.allclose(sa[k], sb[k], atol=1e-6) for k in sa)


def test_compiled_sides_run_the_mask_and_train_every_parameter():
    """torch.compile wraps ``Sides``, so the compiled graph holds forward_with_mask (traced by dynamo;
    the aot_eager backend keeps it fast: no C++ build on a CPU)."""
    from faceswap_lite.registry import MODELS
    from faceswap_lite.train.step import Sides

    torch.manual_seed(0)
    model = MODELS.build_table({"name": "sae", **TINY_SAE_SETTINGS, "arch": "liae"}, sides=("a", "b"))
    sides = Sides(model, ["a", "b"])
    x = [torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)]
    eager = sides(x)
    compiled = torch.compile(sides, backend="aot_eager", fullgraph=True)(x)
    for (f0, m0), (f1, m1) in zip(eager, compiled):
        assert m1 is not None and m1.shape == (2, 1, 64, 64) and m1.dtype == torch.float32
        torch.testing.assert_close(f1, f0)
        torch.testing.assert_close(m1, m0)
    sum(f.mean() + m.mean() for f, m in compiled).backward()
    assert all(p.grad is not None for p in model.parameters())
