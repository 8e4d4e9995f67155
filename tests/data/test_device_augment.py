"""Device augmentation: the workers path's geometry, the same colour distributions, seeded, masks aligned."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import pytest
import torch

from faceswap_lite.config import AugmentConfig, MaskConfig, load_config
from faceswap_lite.data.augment import CLAHE_TILES, Augmenter, affine_matrix, sample_rng
from faceswap_lite.data.dataset import SAMPLE_KEYS, FaceDataset, make_loader
from faceswap_lite.data.device_augment import (
    AFFINE,
    COLOUR,
    DISP,
    RAW_KEYS,
    WARP_ON,
    RawFaceDataset,
    apply_clahe,
    augment_batch,
    draw_params,
    resolve_augment_on,
)
from faceswap_lite.data.faces import FaceStore
from faceswap_lite.errors import ConfigError
from tools.synthetic_faces import draw_face, make_face_set, template_landmarks

SIZE = 64
GEOMETRY = AugmentConfig(rotation=15.0, scale=0.1, shift=0.1, flip=0.5, lightness=0.0, color=0.0, clahe=0.0,
                         warp=1.0, warp_grid=5, warp_strength=0.03)
NO_GEOMETRY = dict(rotation=0.0, scale=0.0, shift=0.0, flip=0.0, warp=0.0)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return draw_face(np.random.default_rng(0), SIZE, template_landmarks(SIZE))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> FaceStore:
    folder = tmp_path_factory.mktemp("faces")
    make_face_set(folder, 6, size=96, seed=1)
    return FaceStore(folder, SIZE)


def _device_batch(images: np.ndarray, cfg: AugmentConfig, keys: list[int], seed: int = 0,
                  masks: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Run augment_batch on uint8 N×H×W×3 ``images`` with the parameters of samples (seed, 0, key)."""
    n, size = len(images), images.shape[1]
    params = np.stack([draw_params(sample_rng(seed, 0, k), size, cfg) for k in keys])
    planes = np.zeros((n, 4, size, size), np.uint8) if masks is None else masks
    raw = {"image": torch.from_numpy(images), "masks": torch.from_numpy(planes), "params": torch.from_numpy(params)}
    return augment_batch(raw, cfg, MaskConfig(), "cpu")


def _u8(t: torch.Tensor) -> np.ndarray:
    """float N×3×H×W in [0, 1] -> uint8 N×H×W×3, rounded as the workers path stores pixels."""
    return np.rint(t.permute(0, 2, 3, 1).numpy() * 255.0).astype(np.uint8)


def test_augment_on_config_key():
    assert load_config().data.augment_on == "auto"
    assert load_config(None, ["data.augment_on=device"]).data.augment_on == "device"
    with pytest.raises(ConfigError, match="data.augment_on must be one of 'auto', 'workers', 'device', got 'gpu'"):
        load_config(None, ["data.augment_on=gpu"])


def test_augment_on_auto_is_the_device_on_cuda_and_the_workers_on_cpu():
    assert resolve_augment_on("auto", "cpu") == "workers"
    assert resolve_augment_on("auto", torch.device("cuda", 0)) == "device"
    assert resolve_augment_on("device", "cpu") == "device"
    assert resolve_augment_on("workers", "cuda") == "workers"
    with pytest.raises(ValueError, match="augment_on"):
        resolve_augment_on("gpu", "cpu")


def test_geometry_and_warp_are_the_workers_path_up_to_rounding(face):
    """Same key -> same affine and warp numbers; the pixels differ only by interpolation rounding."""
    aug = Augmenter(GEOMETRY)
    keys = list(range(24))
    worker = [aug(face, sample_rng(5, 0, k)) for k in keys]
    for k, (_, _, matrix) in zip(keys, worker):
        params = draw_params(sample_rng(5, 0, k), SIZE, GEOMETRY)
        np.testing.assert_allclose(affine_matrix(params[AFFINE], SIZE), matrix, atol=1e-4)
    out = _device_batch(np.stack([face] * len(keys)), GEOMETRY, keys, seed=5)
    for name, idx in (("target", 0), ("input", 1)):
        diff = np.abs(_u8(out[name]).astype(int) - np.stack([w[idx] for w in worker]).astype(int))
        assert diff.mean() < 0.5, name
        assert np.quantile(diff, 0.999) <= 2, name
    assert not np.array_equal(_u8(out["input"]), _u8(out["target"]))  # the warp moved pixels


def test_affine_and_warp_draws_follow_the_config():
    cfg = AugmentConfig(rotation=12.0, scale=0.08, shift=0.06, flip=0.3, warp=0.7, warp_grid=4, warp_strength=0.04)
    p = np.stack([draw_params(sample_rng(0, 0, k), SIZE, cfg) for k in range(3000)])
    angle, zoom, sx, sy, flip = p[:, AFFINE].T
    for values, centre, half in ((angle, 0.0, 12.0), (zoom, 1.0, 0.08), (sx, 0.0, 0.06), (sy, 0.0, 0.06)):
        assert np.all(np.abs(values - centre) <= half + 1e-6)
        assert abs(values.std() - half / np.sqrt(3)) < 0.06 * half  # uniform on ±half
        assert abs(values.mean() - centre) < 0.05 * half
    assert abs(flip.mean() - 0.3) < 0.03
    on = p[:, WARP_ON] > 0
    assert abs(on.mean() - 0.7) < 0.03
    disp = p[on, DISP:]
    assert disp.shape[1] == 2 * 4 * 4
    assert abs(disp.std() - 0.04 * SIZE) < 0.03 * 0.04 * SIZE
    assert np.all(p[~on, DISP:] == 0)


def _recover_light(out: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """(α, β) of out = α·x + β·255 from images whose left half was ``lo`` and right half ``hi``."""
    a, b = out[:, :, :2].reshape(len(out), -1).mean(1), out[:, :, -2:].reshape(len(out), -1).mean(1)
    alpha = (b - a) / (hi - lo)
    return alpha, (a - alpha * lo) / 255.0


def _recover_hue_sat(out: np.ndarray, hsv0: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(hue shift in OpenCV units, saturation shift of 255) of uniform colour images from ``hsv0``."""
    hsv = np.stack([cv2.cvtColor(o, cv2.COLOR_RGB2HSV)[2, 2].astype(float) for o in out])
    dh = (hsv[:, 0] - hsv0[0] + 90.0) % 180.0 - 90.0
    return dh, hsv[:, 1] - hsv0[1]


def _compare(worker: np.ndarray, device: np.ndarray, half: float, what: str) -> None:
    """Mixtures of 'off' (0) and U(±half): same mean, spread, range and share switched on."""
    sd = half / np.sqrt(3)
    assert abs(worker.mean() - device.mean()) < 0.2 * sd, what
    assert abs(worker.std() - device.std()) < 0.12 * sd, what
    assert abs(worker.min() - device.min()) < 0.15 * half and abs(worker.max() - device.max()) < 0.15 * half, what
    on_w, on_d = (np.abs(worker) > 0.1 * half).mean(), (np.abs(device) > 0.1 * half).mean()
    assert abs(on_w - on_d) < 0.08, what


N_COLOUR = 500


def test_brightness_contrast_distribution_matches_the_workers_path():
    """Both paths' outputs on a two-level image give back (α, β): their distributions agree."""
    cfg = AugmentConfig(**NO_GEOMETRY, lightness=0.5, color=0.0, clahe=0.0)
    lo, hi = 70, 160  # no clipping for α in 1 ± 0.2, β in ±0.2
    img = np.full((8, 8, 3), lo, np.uint8)
    img[:, 4:] = hi
    aug = Augmenter(cfg)
    worker = np.stack([aug(img, sample_rng(1, 0, k))[0] for k in range(N_COLOUR)]).astype(float)
    device = _u8(_device_batch(np.stack([img] * N_COLOUR), cfg, list(range(N_COLOUR)), seed=2)["target"])
    (aw, bw), (ad, bd) = _recover_light(worker, lo, hi), _recover_light(device.astype(float), lo, hi)
    _compare(aw - 1.0, ad - 1.0, 0.2, "contrast")
    _compare(bw, bd, 0.2, "brightness")


def test_hue_saturation_distribution_matches_the_workers_path():
    cfg = AugmentConfig(**NO_GEOMETRY, lightness=0.0, color=0.5, clahe=0.0)
    hsv0 = (60, 150, 200)  # OpenCV units: a green of mid saturation
    img = np.ascontiguousarray(np.broadcast_to(
        cv2.cvtColor(np.array([[hsv0]], np.uint8), cv2.COLOR_HSV2RGB), (6, 6, 3)))
    aug = Augmenter(cfg)
    worker = np.stack([aug(img, sample_rng(1, 0, k))[0] for k in range(N_COLOUR)])
    device = _u8(_device_batch(np.stack([img] * N_COLOUR), cfg, list(range(N_COLOUR)), seed=2)["target"])
    (hw, sw), (hd, sd) = _recover_hue_sat(worker, hsv0), _recover_hue_sat(device, hsv0)
    _compare(hw, hd, 8.0, "hue")
    _compare(sw, sd, 20.0, "saturation")


def test_clahe_is_albumentations_clahe_within_two_levels(face):
    """kornia's CLAHE on the Lab L channel against the workers' (OpenCV's, via albumentations)."""
    flat = (face.astype(np.float32) * 0.3 + 90).astype(np.uint8)  # a low-contrast face
    for clip in (1.0, 2.0):
        worker = A.CLAHE(clip_limit=(clip, clip), tile_grid_size=CLAHE_TILES, p=1.0)(image=flat)["image"]
        x = torch.from_numpy(flat).permute(2, 0, 1)[None].float() / 255.0
        device = _u8(apply_clahe(x, np.array([1.0]), np.array([clip])))[0].astype(float)
        assert np.abs(device - worker).mean() < 2.0, clip
        assert abs(device.std() - worker.std()) < 0.05 * worker.std(), clip
        assert worker.std() > 1.2 * flat.std()  # it did raise the contrast
    cfg = AugmentConfig(**NO_GEOMETRY, lightness=0.0, color=0.0, clahe=0.5)
    keys = list(range(6))
    out = _u8(_device_batch(np.stack([flat] * len(keys)), cfg, keys)["target"])
    drawn = [bool(draw_params(sample_rng(0, 0, k), SIZE, cfg)[COLOUR][6]) for k in keys]
    assert any(drawn) and not all(drawn)
    for k, on in zip(keys, drawn):
        assert np.array_equal(out[k], flat) != on, k


def test_masks_stay_on_the_image_under_the_geometry():
    """A white disc whose face mask is the disc itself: after the affine the two still coincide."""
    disc = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(disc, (24, 36), 14, 255, -1)
    img = np.repeat(disc[:, :, None], 3, 2)
    planes = np.stack([disc, disc, np.zeros_like(disc), np.full_like(disc, 255)])  # face, eyes, mouth, valid
    cfg = AugmentConfig(rotation=30.0, scale=0.2, shift=0.15, flip=0.5, lightness=0.0, color=0.0, warp=1.0)
    n = 16
    out = _device_batch(np.stack([img] * n), cfg, list(range(n)), masks=np.stack([planes] * n))
    bright = out["target"].mean(1) > 0.5
    inside = out["face"][:, 0] > 0.5
    for k in range(n):
        iou = (bright[k] & inside[k]).sum() / (bright[k] | inside[k]).sum()
        assert iou > 0.97, k
    assert torch.all(out["eyes"] <= out["face"] + 1e-6)
    # The flip moved the disc (centre x = 24) to the other side for some samples.
    cx = (bright.float() * torch.arange(SIZE)).sum((1, 2)) / bright.sum((1, 2))
    assert (cx > SIZE / 2).any() and (cx < SIZE / 2).any()


@pytest.fixture(scope="module")
def cut_store(tmp_path_factory) -> FaceStore:
    """Faces whose source image ended at 70 % of the crop's width (a valid polygon cuts the face mask)."""
    folder = tmp_path_factory.mktemp("cut")
    make_face_set(folder, 4, size=96, seed=2, valid_polygon=np.array([[0, 0], [67, 0], [67, 95], [0, 95]], np.float32))
    return FaceStore(folder, SIZE)


@pytest.mark.parametrize("faces, mask", [("store", MaskConfig(blur=0.02)), ("cut_store", MaskConfig(blur=0.02)),
                                         ("cut_store", MaskConfig(blur=0.05, face=False))])
def test_masks_match_the_workers_masks_for_the_same_sample(request, faces, mask):
    store = request.getfixturevalue(faces)
    worker = FaceDataset(store, augment=GEOMETRY, mask=mask, seed=3, stream=7)
    raw = RawFaceDataset.of(worker)
    keys = [(e, i) for e in range(2) for i in range(len(raw))]
    samples = [raw[k] for k in keys]
    batch = {k: torch.stack([s[k] for s in samples]) for k in RAW_KEYS}
    out = augment_batch(batch, GEOMETRY, mask, "cpu")
    for j, key in enumerate(keys):
        ref = worker[key]
        for name in ("face", "eyes", "mouth"):
            assert torch.mean(torch.abs(out[name][j] - ref[name])) < 0.01, (key, name)
        assert torch.mean(torch.abs(out["target"][j] - ref["target"])) < 2 / 255


def test_loader_batches_have_the_workers_layout_and_are_reproducible(store):
    worker = FaceDataset(store, augment=GEOMETRY, seed=0, stream=1)
    raw = RawFaceDataset.of(worker)

    def batch(ds, seed: int, skip: int = 0) -> dict[str, torch.Tensor]:
        return next(iter(make_loader(ds, 4, workers=0, seed=seed, skip=skip, pin_memory=False)))

    first = batch(raw, seed=0)
    assert first["image"].dtype == torch.uint8 and first["image"].shape == (4, SIZE, SIZE, 3)
    assert first["masks"].dtype == torch.uint8 and first["masks"].shape == (4, 4, SIZE, SIZE)
    out = augment_batch(first, GEOMETRY, MaskConfig(), "cpu")
    ref = batch(worker, seed=0)
    assert set(out) == set(SAMPLE_KEYS) == set(ref)
    for k in SAMPLE_KEYS:
        assert out[k].shape == ref[k].shape and out[k].dtype == ref[k].dtype == torch.float32, k
        assert float(out[k].min()) >= 0.0 and float(out[k].max()) <= 1.0, k
    again = augment_batch(batch(raw, seed=0), GEOMETRY, MaskConfig(), "cpu")
    for k in SAMPLE_KEYS:
        assert torch.equal(out[k], again[k]), k
    other = augment_batch(batch(raw, seed=1), GEOMETRY, MaskConfig(), "cpu")
    assert not torch.equal(out["input"], other["input"])
    # Resume: skipping the first 4 samples gives the second batch of an unbroken run.
    it = iter(make_loader(raw, 4, workers=0, seed=0, pin_memory=False))
    next(it)
    second = next(it)
    resumed = batch(raw, seed=0, skip=4)
    for k in RAW_KEYS:
        assert torch.equal(second[k], resumed[k]), k


def test_channels_first_images_give_the_same_batch(face):
    cfg = AugmentConfig()
    hwc = np.stack([face] * 3)
    params = torch.from_numpy(np.stack([draw_params(sample_rng(0, 0, k), SIZE, cfg) for k in range(3)]))
    planes = torch.zeros(3, 4, SIZE, SIZE, dtype=torch.uint8)
    a = augment_batch({"image": torch.from_numpy(hwc), "masks": planes, "params": params}, cfg, MaskConfig(), "cpu")
    b = augment_batch({"image": torch.from_numpy(hwc).permute(0, 3, 1, 2), "masks": planes, "params": params},
                      cfg, MaskConfig(), "cpu")
    for k in SAMPLE_KEYS:
        assert torch.equal(a[k], b[k]), k
