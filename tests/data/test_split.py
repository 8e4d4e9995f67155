"""The held-out split: a guarded segment of each clip and whole photos, honest for every clip length
and every shipped recipe, stable under adding and deleting files."""

from __future__ import annotations

import pytest

from faceswap_lite.config import load_config, recipe_path, recipes
from faceswap_lite.data.faces import FaceStore
from faceswap_lite.data.split import DEFAULT_GAP, FaceKey, Split, nearest_trained, split_faces
from faceswap_lite.extract import ExtractOptions, plan_extract, run_extract
from faceswap_lite.faceset import FaceSetError

from ..helpers import make_video


def video(source: str, frames: range) -> list[FaceKey]:
    return [FaceKey(f"{source}_{t:06d}_00.png", source, t) for t in frames]


def closest_trained(keys: list[FaceKey], train: list[int], val: list[int]) -> int:
    """Brute force: the fewest frames between a held-out face and a trained face of its clip."""
    return min(abs(keys[v].frame - keys[t].frame) for v in val for t in train
               if keys[v].source == keys[t].source and keys[v].frame is not None and keys[t].frame is not None)


@pytest.mark.parametrize("length", [40, 72, 500, 5000])
@pytest.mark.parametrize("every", [1, 2])
def test_every_clip_gets_held_out_faces_beyond_the_gap(length: int, every: int):
    keys = video("clip.mp4", range(0, length, every))
    train, val, split = split_faces(keys, 0.05, 64, DEFAULT_GAP)
    assert val, f"a {length}-frame clip (every {every}) got no held-out faces"
    assert sorted(train + val + [i for i, k in enumerate(keys) if k.name in split.gap_files]) == list(range(len(keys)))
    assert closest_trained(keys, train, val) > DEFAULT_GAP
    assert nearest_trained(keys, train, val) == closest_trained(keys, train, val)
    # One contiguous segment: the held-out frames are consecutive faces of the clip.
    frames = sorted(keys[i].frame for i in val)
    assert frames == list(range(frames[0], frames[-1] + 1, every))
    assert len(val) <= max(1, round(0.05 * len(keys)))


@pytest.mark.parametrize("recipe", recipes())
def test_every_recipe_keeps_held_out_faces_away_from_training(recipe: str):
    cfg = load_config(recipe_path(recipe)).data
    for length in (72, 500):
        keys = video("clip.mp4", range(0, length, 2))
        train, val, _ = split_faces(keys, cfg.val_fraction, cfg.max_val, cfg.val_gap)
        if cfg.val_fraction > 0 and cfg.max_val > 0:
            assert val and closest_trained(keys, train, val) > cfg.val_gap, recipe


def test_a_clip_too_short_says_so_and_trains_whole():
    keys = video("short.mp4", range(30))
    train, val, split = split_faces(keys, 0.05, 64, DEFAULT_GAP)
    assert val == [] and train == list(range(30)) and split.short == ["short.mp4"]
    assert split_faces(keys, 0.0, 64)[:2] == (list(range(30)), [])


def test_max_val_caps_the_segments_across_clips():
    keys = video("a.mp4", range(3000)) + video("b.mp4", range(3000)) + video("c.mp4", range(3000))
    train, val, split = split_faces(keys, 0.05, 64, DEFAULT_GAP)
    assert 0 < len(val) <= 64
    assert closest_trained(keys, train, val) > DEFAULT_GAP


def test_saved_split_never_moves_faces_and_new_frames_follow_their_range():
    keys = video("clip.mp4", range(0, 3000, 2)) + video("other.mp4", range(500))
    train, val, split = split_faces(keys, 0.05, 64, DEFAULT_GAP)
    names = {k.name for k in keys}
    held = {keys[i].name for i in val}
    trained = {keys[i].name for i in train}
    gone = {keys[val[0]].name, keys[train[0]].name}
    # Delete a held-out and a trained face; add the odd frames of the first clip and a new clip.
    later = [k for k in keys if k.name not in gone] + video("clip.mp4", range(1, 3000, 2)) + video("new.mp4", range(400))
    saved = Split.from_json(split.to_json(), "split.json")
    tr2, va2, split2 = split_faces(later, 0.05, 64, 5, saved)  # a changed gap does not re-cut the saved split
    held2, trained2 = {later[i].name for i in va2}, {later[i].name for i in tr2}
    assert held2 & names == held - gone and trained2 & names == trained - gone
    assert closest_trained(later, tr2, va2) > DEFAULT_GAP  # added frames fell on their range's side
    assert len(va2) <= 64 and split2.train_count == len(tr2) and split2.gap == DEFAULT_GAP
    assert split_faces(later, 0.05, 64, DEFAULT_GAP, Split.from_json(split2.to_json(), "s"))[:2] == (tr2, va2)


def test_photos_are_whole_units_small_sets_get_one_and_off_means_off():
    photos = [FaceKey(f"p{i}.png", f"p{i}.jpg", None) for i in range(10)]
    _, val, _ = split_faces(photos, 0.05, 64)
    assert len(val) == 1
    assert split_faces(photos, 0.0, 64)[:2] == (list(range(10)), [])
    assert split_faces(photos[:1], 0.5, 64)[:2] == ([0], [])
    train, val, _ = split_faces(photos[:4], 0.5, 64)
    assert len(train) >= 1 and len(train) + len(val) == 4


def test_a_split_saved_before_segments_keeps_its_blocks():
    keys = video("clip.mp4", range(200))
    old = {"val": [k.name for k in keys[64:96]], "train_count": 168, "block": 32,
           "val_blocks": ["clip.mp4#2"], "train_blocks": ["clip.mp4#0", "clip.mp4#1", "clip.mp4#3"]}
    train, val, split = split_faces(keys, 0.05, 64, DEFAULT_GAP, Split.from_json(old, "split.json"))
    assert val == list(range(64, 96)) and len(train) == 168
    assert split.to_json()["block"] == 32


def test_damaged_split_is_named():
    with pytest.raises(FaceSetError, match="split.json .*damaged.*delete it"):
        Split.from_json({"val": []}, "run/split.json")


def test_real_clip_extracted_by_the_project(tmp_path):
    """Faces extracted from a real 72-frame video (a pan over a real photo): held out beyond the gap."""
    clip = make_video(tmp_path / "pan.mp4", frames=72)
    faces = tmp_path / "faces"
    run_extract(plan_extract([str(clip)], faces, ExtractOptions(workers=1, size=64)))
    keys = FaceStore(faces, 64, cache=False).keys
    assert len(keys) == 72
    train, val, split = split_faces(keys, 0.05, 64, DEFAULT_GAP)
    assert val and closest_trained(keys, train, val) > DEFAULT_GAP
    assert len(split.gap_files) > 0 and not split.short
