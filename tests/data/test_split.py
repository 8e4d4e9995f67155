"""The held-out split: whole blocks of frames, stable under adding and deleting files (no images needed)."""

from __future__ import annotations

import pytest

from faceswap_lite.data.split import FaceKey, Split, block_of, split_faces
from faceswap_lite.faceset import FaceSetError


def video(source: str, frames: range) -> list[FaceKey]:
    return [FaceKey(f"{source}_{t:06d}_00.png", source, t) for t in frames]


def faces_with_trained_neighbour(keys: list[FaceKey], val: list[int]) -> int:
    """Held-out video faces whose frame t-1 or t+1 (same source) is trained."""
    held = {(keys[i].source, keys[i].frame) for i in val}
    known = {(k.source, k.frame) for k in keys}
    return sum(1 for i in val if keys[i].frame is not None and any(
        (keys[i].source, keys[i].frame + d) in known - held for d in (-1, 1)))


def test_blocks_keep_neighbours_together():
    keys = video("clip1.mp4", range(1500)) + video("clip2.mp4", range(900))
    keys += [FaceKey(f"photo{i}_000000_00.png", f"photo{i}.jpg", None) for i in range(300)]
    train, val, split = split_faces(keys, 0.1, 100_000, block=32)
    assert sorted(train + val) == list(range(len(keys))) and not set(train) & set(val)
    held_blocks = {block_of(keys[i], 32) for i in val}
    assert 0.05 * len(keys) < len(val) < 0.2 * len(keys)
    # Only the two end frames of a held-out block can have a trained neighbour.
    video_blocks = {b for b in held_blocks if "#" in b}
    assert faces_with_trained_neighbour(keys, val) <= 2 * len(video_blocks)
    assert split.val_files == [keys[i].name for i in val] and split.train_count == len(train)
    # The same input gives the same split; the rank is the block's, not the file's.
    assert split_faces(keys, 0.1, 100_000, block=32)[:2] == (train, val)


def test_cap_picks_whole_blocks_and_saved_split_never_moves_faces():
    keys = video("clip.mp4", range(3000))
    train, val, split = split_faces(keys, 0.1, 64, block=32)
    assert 0 < len(val) <= 64 and len(val) % 32 == 0  # whole blocks
    names = {k.name for k in keys}
    held = {keys[i].name for i in val}

    # Delete a held-out face and a trained one, add 500 frames: nothing moves across.
    gone = {keys[val[0]].name, keys[train[0]].name}
    later = [k for k in keys if k.name not in gone] + video("clip.mp4", range(3000, 3500))
    tr2, va2, split2 = split_faces(later, 0.1, 64, block=32, previous=Split.from_json(split.to_json(), "split"))
    held2 = {later[i].name for i in va2}
    trained2 = {later[i].name for i in tr2}
    assert held2 & names == held - gone  # old held-out faces stay held out
    assert trained2 & names == names - held - gone  # old trained faces stay trained
    assert len(va2) <= 64 and split2.train_count == len(tr2)
    # New frames of a new block go by the rule, within the room left under the cap.
    assert all(later[i].frame >= 3000 for i in va2 if later[i].name not in names)

    # A changed data.val_block on resume does not re-cut the saved blocks.
    tr3, va3, _ = split_faces(later, 0.1, 64, block=8, previous=split2)
    assert (tr3, va3) == (tr2, va2)


def test_small_sets_get_one_small_block_and_off_means_off():
    photos = [FaceKey(f"p{i}.png", f"p{i}.jpg", None) for i in range(10)]
    _, val, _ = split_faces(photos, 0.05, 64)
    assert len(val) == 1
    clip = video("short.mp4", range(48))  # two blocks of 32 and 16: too big to hold out 5 %
    assert split_faces(clip, 0.05, 64)[1] == []
    assert split_faces(clip, 0.0, 64)[:2] == (list(range(48)), [])
    assert split_faces(photos[:1], 0.5, 64)[:2] == ([0], [])
    train, val, _ = split_faces(photos[:4], 0.5, 64)
    assert len(train) >= 1 and len(train) + len(val) == 4


def test_faces_without_a_source_are_their_own_blocks_and_damaged_split_is_named():
    keys = [FaceKey(f"f{i}.png", "", None) for i in range(20)]
    assert len({block_of(k, 32) for k in keys}) == 20
    with pytest.raises(FaceSetError, match="split.json .*damaged.*delete it"):
        Split.from_json({"val": []}, "run/split.json")
