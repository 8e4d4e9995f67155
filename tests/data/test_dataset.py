"""Face sets as training data: decoding, bad files, split, samples, sampler and DataLoader."""

from __future__ import annotations

import logging
import runpy
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceswap_lite.config import AugmentConfig, DataConfig, MaskConfig
from faceswap_lite.data import (
    SAMPLE_KEYS,
    FaceDataset,
    FaceSampler,
    FaceStore,
    landmark_masks,
    load_face_set,
    loader_throughput,
    make_loader,
)
from faceswap_lite.data.faces import CORRUPT
from faceswap_lite.faceset import FaceSetError, read_face
from tools.synthetic_faces import make_face_set, write_bad_files

SRC = 96  # face-set crop size
RES = 48  # model resolution
N_GOOD = 20


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    make_face_set(folder, N_GOOD, SRC, seed=1)
    return folder


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory, good_dir):
    folder = tmp_path_factory.mktemp("mixed")
    for p in sorted(good_dir.glob("*.png")):
        shutil.copy(p, folder / p.name)
    expected = write_bad_files(folder, SRC)
    return folder, expected


@pytest.fixture(scope="module")
def store(good_dir):
    return FaceStore(good_dir, RES)


def test_store_decodes_resizes_and_scales_landmarks(store, good_dir):
    assert len(store) == N_GOOD and store.total == N_GOOD and store.skipped == {}
    assert store.images.shape == (N_GOOD, RES, RES, 3) and store.images.dtype == torch.uint8
    assert store.nbytes == N_GOOD * RES * RES * 3
    rgb, meta = read_face(store.paths[3])
    np.testing.assert_array_equal(store.image(3), cv2.resize(rgb, (RES, RES), interpolation=cv2.INTER_AREA))
    scale = RES / SRC
    np.testing.assert_allclose(store.landmarks[3], (meta.landmarks + 0.5) * scale - 0.5, atol=1e-4)
    assert store.landmarks.shape == (N_GOOD, 68, 2) and store.landmarks.dtype == np.float32


def test_bad_files_are_skipped_counted_and_named(mixed_dir, caplog):
    folder, expected = mixed_dir
    with caplog.at_level(logging.WARNING, logger="faceswap_lite.data"):
        s = FaceStore(folder, RES)
    assert len(s) == N_GOOD
    got = {reason: sorted(p.name for p in paths) for reason, paths in s.skipped.items()}
    assert got == {reason: sorted(names) for reason, names in expected.items()}
    n_bad = sum(len(v) for v in expected.values())
    assert s.num_skipped == n_bad and s.total == N_GOOD + n_bad
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"skipped {n_bad} of {N_GOOD + n_bad}" in warnings[0]
    assert "bad_empty.png" in warnings[0] and "bad_wrong_size.png" in warnings[0]


def test_missing_empty_or_all_bad_face_sets_raise(tmp_path):
    with pytest.raises(FaceSetError, match="does not exist"):
        FaceStore(tmp_path / "nope", RES)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no faces here")
    with pytest.raises(FaceSetError, match="holds no face PNGs"):
        FaceStore(tmp_path / "empty", RES)
    bad = tmp_path / "bad"
    bad.mkdir()
    write_bad_files(bad, 64)
    with pytest.raises(FaceSetError, match="none of its 9 PNG files can be used") as info:
        FaceStore(bad, RES)
    assert "\n" not in info.value.message


def test_without_cache_samples_match_and_bad_pixels_are_replaced(good_dir, store, tmp_path, caplog):
    lazy = FaceStore(good_dir, RES, cache=False)
    assert lazy.images is None and lazy.paths == store.paths
    cfg = AugmentConfig()
    a = FaceDataset(store, augment=cfg, seed=3)[(1, 4)]
    b = FaceDataset(lazy, augment=cfg, seed=3)[(1, 4)]
    for key in SAMPLE_KEYS:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    # A file that goes bad after indexing (truncated pixels) is logged and another face used instead.
    folder = tmp_path / "lazy"
    make_face_set(folder, 3, SRC, seed=2)
    lazy = FaceStore(folder, RES, cache=False)
    data = lazy.paths[0].read_bytes()
    lazy.paths[0].write_bytes(data[: len(data) // 2])
    ds = FaceDataset(lazy)
    with caplog.at_level(logging.WARNING, logger="faceswap_lite.data"):
        sample = ds[0]
    torch.testing.assert_close(sample["target"], ds[1]["target"])
    assert any(lazy.paths[0].name in r.getMessage() for r in caplog.records)
    # The up-front scan of a cached store counts it instead.
    assert [p.name for p in FaceStore(folder, RES).skipped[CORRUPT]] == [lazy.paths[0].name]


def test_training_sample_contract(store):
    ds = FaceDataset(store, augment=AugmentConfig(), mask=MaskConfig(), seed=0)
    s = ds[0]
    assert set(s) == set(SAMPLE_KEYS)
    for key in ("input", "target"):
        assert s[key].shape == (3, RES, RES) and s[key].dtype == torch.float32
    for key in ("face", "eyes", "mouth"):
        assert s[key].shape == (1, RES, RES) and s[key].dtype == torch.float32
    for v in s.values():
        assert float(v.min()) >= 0.0 and float(v.max()) <= 1.0
    assert not torch.equal(s["input"], s["target"])  # the warp
    assert float(s["face"].mean()) > 0.1 and float(s["eyes"].sum()) > 0 and float(s["mouth"].sum()) > 0
    assert torch.all(s["eyes"] <= s["face"]) and torch.all(s["mouth"] <= s["face"])


def test_masks_follow_the_augmented_face(tmp_path):
    """Skin pixels and the face mask coincide after rotation/zoom/shift/flip (no colour, no warp)."""
    make_face_set(tmp_path, 6, 128, seed=5)
    store = FaceStore(tmp_path, 64)
    cfg = AugmentConfig(rotation=25, scale=0.1, shift=0.1, flip=0.5, lightness=0, color=0, clahe=0, warp=0)
    ds = FaceDataset(store, augment=cfg, mask=MaskConfig(blur=0.0), seed=1)
    skin = torch.tensor([225, 180, 150], dtype=torch.float32)[:, None, None] / 255
    for i in range(6):
        s = ds.sample(i, epoch=2)
        is_skin = ((s["target"] - skin).abs().amax(0) < 0.06)
        jaw_hull = is_skin | (s["eyes"][0] > 0.5) | (s["mouth"][0] > 0.5)
        face = s["face"][0] > 0.5
        # The drawn skin is the jaw+brow hull; the mask adds the forehead. Skin lies inside the mask.
        assert (jaw_hull & ~face).sum() <= 0.03 * jaw_hull.sum()
        assert (face & jaw_hull).sum() >= 0.6 * face.sum()  # the forehead is ~30 % of the mask


def test_validation_sample_is_the_face_itself(store):
    ds = FaceDataset(store, [2, 5], augment=None, mask=MaskConfig(blur=0.0))
    s = ds[1]
    assert torch.equal(s["input"], s["target"])
    expected = torch.from_numpy(store.image(5).astype(np.float32) / 255).permute(2, 0, 1)
    torch.testing.assert_close(s["target"], expected)
    masks = landmark_masks(store.landmarks[5], RES, store.valid_polygons[5], blur=0.0)
    torch.testing.assert_close(s["face"][0], torch.from_numpy(masks[0]))
    assert torch.equal(ds[(7, 1)]["input"], s["input"])  # no randomness at all


def test_samples_are_reproducible_and_vary(store):
    ds = FaceDataset(store, augment=AugmentConfig(), seed=11, stream=1)
    a = ds.sample(3, epoch=0)
    same = FaceDataset(store, augment=AugmentConfig(), seed=11, stream=1).sample(3, epoch=0)
    for key in SAMPLE_KEYS:
        assert torch.equal(a[key], same[key])
    for other in (ds.sample(3, epoch=1), FaceDataset(store, augment=AugmentConfig(), seed=12, stream=1).sample(3),
                  FaceDataset(store, augment=AugmentConfig(), seed=11, stream=2).sample(3)):
        assert not torch.equal(a["input"], other["input"])
    ds.set_epoch(1)
    assert torch.equal(ds[3]["input"], ds.sample(3, epoch=1)["input"])


def test_loader_batches_identical_with_0_and_2_workers(store):
    ds = FaceDataset(store, augment=AugmentConfig(), seed=5)
    batches = {}
    for workers in (0, 2):
        loader = make_loader(ds, 6, workers=workers, seed=9, pin_memory=False)
        it = iter(loader)
        batches[workers] = [next(it) for _ in range(5)]  # 30 samples: crosses an epoch boundary
        del it, loader
    for b0, b2 in zip(batches[0], batches[2]):
        assert set(b0) == set(SAMPLE_KEYS)
        assert b0["input"].shape == (6, 3, RES, RES) and b0["face"].shape == (6, 1, RES, RES)
        for key in SAMPLE_KEYS:
            assert torch.equal(b0[key], b2[key]), key


def test_sampler_shards_shuffles_and_resumes():
    n = 10
    first = [list(FaceSampler(n, seed=1, rank=r, world_size=3, infinite=False)) for r in range(3)]
    assert all(len(shard) == 4 for shard in first)  # ceil(10 / 3), padded by wrapping
    indices = [i for shard in first for _, i in shard]
    assert set(indices) == set(range(n)) and len(indices) == 12
    assert all(e == 0 for shard in first for e, _ in shard)
    one = FaceSampler(n, seed=1)
    stream = [x for _, x in zip(range(3 * n), one)]
    epochs = [[i for e, i in stream if e == k] for k in range(3)]
    assert all(sorted(ep) == list(range(n)) for ep in epochs) and epochs[0] != epochs[1]
    # Resuming after 13 samples continues exactly where the stream was.
    resumed = FaceSampler(n, seed=1, skip=13)
    assert [x for _, x in zip(range(10), resumed)] == stream[13:23]
    finite = FaceSampler(n, seed=1, infinite=False)
    finite.set_epoch(2)
    assert [i for _, i in finite] == epochs[2] and len(finite) == n
    assert [i for _, i in FaceSampler(n, shuffle=False, infinite=False)] == list(range(n))
    other_side = [i for _, i in FaceSampler(n, seed=1, stream=7, infinite=False)]
    assert sorted(other_side) == list(range(n)) and other_side != epochs[0]


def test_validation_loader_is_one_ordered_pass(store):
    ds = FaceDataset(store, list(range(7)))
    batches = list(make_loader(ds, 3, train=False, pin_memory=False))
    assert [b["input"].shape[0] for b in batches] == [3, 3, 1]
    assert torch.equal(batches[0]["target"][1], ds[1]["target"])


def test_load_face_set_and_throughput(good_dir):
    sets = load_face_set(good_dir, RES, DataConfig(val_fraction=0.2, max_val=3), AugmentConfig(), MaskConfig(),
                         seed=0, side="b")
    assert sets.val is not None and 1 <= len(sets.val) <= 3 and len(sets.train) + len(sets.val) == N_GOOD
    assert sets.train.train and not sets.val.train and sets.skipped == {}
    assert not set(sets.train.indices.tolist()) & set(sets.val.indices.tolist())
    none = load_face_set(good_dir, RES, DataConfig(val_fraction=0.0), AugmentConfig(), MaskConfig())
    assert none.val is None and len(none.train) == N_GOOD
    assert loader_throughput(sets.train, batch_size=4, workers=0, batches=2, warmup=1) > 0


def test_bench_loader_tool_runs(good_dir, monkeypatch, capsys):
    tool = Path(__file__).resolve().parents[2] / "tools" / "bench_loader.py"
    monkeypatch.setattr(sys, "argv", [str(tool), "--faces", str(good_dir), "--resolutions", "64", "--workers", "0",
                                      "--batch-size", "4", "--batches", "2", "--repeats", "1", "--model-steps", "1",
                                      "--model-width", "0.03125", "--threads", str(torch.get_num_threads())])
    runpy.run_path(str(tool), run_name="__main__")
    out = capsys.readouterr().out
    assert "| 64 px, loader, 0 workers |" in out and "model step" in out
