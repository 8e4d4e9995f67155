"""evaluate: every metric on a tiny trained run, masks that ignore the background, swap identity on real photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from faceswap_lite.evaluate.panel import (
    METRICS,
    EvaluateError,
    ImageMetrics,
    held_out_names,
    load_side_faces,
    side_centre,
    swap_scores,
)
from faceswap_lite.faceset import list_faces, read_meta

from ..helpers import error_line, run_cli

IMAGE_KEYS = ("psnr", "ssim", "ms_ssim", "gmsd")
SWAP_KEYS = ("swap_id_target", "swap_id_source", "swap_as_target", "swap_expression")


def test_evaluate_gives_every_metric(tiny_run):
    res = run_cli(["evaluate", str(tiny_run), "--json"])
    panel = json.loads(res.output)
    assert panel["sides"] == ["a", "b"] and panel["step"] == 2
    split = json.loads((tiny_run / "split.json").read_text())
    lpips_note = [n for n in panel["notes"] if n.startswith("lpips left out")]
    for side in ("a", "b"):
        assert panel["faces"][side]["count"] == len(split[side]["val"]) > 0
        m = panel["metrics"][side]
        for key in IMAGE_KEYS + SWAP_KEYS:
            assert np.isfinite(m[key]), (side, key)
        assert 0 < m["ssim"] <= 1 and 0 <= m["swap_as_target"] <= 1
        # LPIPS is there exactly when its weights are on the machine; otherwise one note says so.
        assert ("lpips" in m) != bool(lpips_note)
    # How far the held-out faces are from training, one note per side.
    assert {n.split(":")[0] for n in panel["notes"] if n.startswith("side ")} == {"side A", "side B"}
    table = run_cli(["evaluate", str(tiny_run)]).output
    for metric in METRICS:
        if metric.key != "lpips" or not lpips_note:
            assert metric.label in table


def test_evaluate_on_a_given_face_set(tiny_run, faces):
    res = run_cli(["evaluate", str(tiny_run), "-B", str(faces / "B"), "--json"])
    assert json.loads(res.output)["faces"]["b"]["count"] == 12


def test_evaluate_bad_inputs(tmp_path, tiny_run, faces):
    for args, words in (([str(tmp_path / "nope")], "does not exist"),
                        ([str(tiny_run), "-B", str(tmp_path / "nofaces")], "does not exist")):
        res = run_cli(["evaluate", *args], expect=2)
        assert words in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_held_out_names_of_a_missing_or_damaged_split(tmp_path, tiny_run):
    split = json.loads((tiny_run / "split.json").read_text())
    assert held_out_names(tiny_run, "a") == split["a"]["val"]
    for text, words in ((None, "not found"), ("[1]", "not a JSON object"), ('{"a": {"val": 3}}', "is damaged"),
                        (json.dumps({"b": split["b"]}), "no split for side A")):
        if text is not None:
            (tmp_path / "split.json").write_text(text)
        with pytest.raises(EvaluateError, match=words) as err:
            held_out_names(tmp_path, "a")
        assert "pass -A FACES" in err.value.message and "delete it" not in err.value.message


def test_masked_metrics_ignore_the_background(faces):
    data = load_side_faces(faces / "A", 64, None, 0.02, "test")
    target, mask = data.images[:4], data.masks[:4]
    torch.manual_seed(0)
    pred = (target + 0.1 * torch.randn_like(target)).clamp(0, 1)
    outside = (mask == 0).expand_as(pred)
    assert outside.float().mean() > 0.2  # the synthetic faces have a wide background
    other = torch.where(outside, torch.rand_like(pred), pred)  # new pixels only where the mask is 0
    metrics = ImageMetrics(64, "cpu")
    first, second = metrics(pred, target, mask), metrics(other, target, mask)
    unmasked = metrics(other, target, torch.ones_like(mask))
    for key in first:
        assert torch.allclose(first[key], second[key], atol=1e-6), key
        assert not torch.allclose(first[key], unmasked[key], atol=1e-3), key  # the background does count unmasked


@pytest.fixture(scope="module")
def people(photo_faces):
    """The real faces as two sides: Obama (3 photos) and Biden (1 photo), at 128 px."""
    names = {p.name: read_meta(p).source for p in list_faces(photo_faces)}
    obama = sorted(n for n, src in names.items() if "obama" in src)
    biden = sorted(n for n, src in names.items() if "biden" in src)
    assert len(obama) == 3 and len(biden) == 1
    return (load_side_faces(photo_faces, 128, obama, 0.02, "obama"),
            load_side_faces(photo_faces, 128, biden, 0.02, "biden"))


def test_swap_identity_on_real_photos(people):
    a, b = people
    ca, cb = side_centre(a.images, a.landmarks), side_centre(b.images, b.landmarks)
    # A "swap" that returns B's face for every A face: it is B.
    as_b = swap_scores(a.images, b.images.expand_as(a.images), a.landmarks, ca, cb)
    assert as_b["swap_as_target"] == 1.0
    assert as_b["swap_id_target"] < 0.6 < as_b["swap_id_source"]
    # A "swap" that returns the input: it is still A, with its expression kept exactly.
    as_a = swap_scores(a.images, a.images, a.landmarks, ca, cb)
    assert as_a["swap_as_target"] == 0.0
    assert as_a["swap_id_source"] < 0.6 < as_a["swap_id_target"]
    assert as_a["swap_expression"] == 0.0 < as_b["swap_expression"]


@pytest.mark.parametrize("device, words", [("banana", "--device 'banana': not a device; use auto, cpu, cuda or cuda:N"),
                                           ("cuda", "--device 'cuda': no CUDA GPU is available here")])
def test_evaluate_on_a_device_that_is_not_there_is_one_line(device, words, tiny_run):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    res = run_cli(["evaluate", str(tiny_run), "--device", device], expect=2)
    assert words in error_line(res.output)
