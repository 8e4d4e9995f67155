"""Identity in extract: every face carries its descriptor; ``--identity`` keeps one person's faces.

Real photos from tests/photos: four of Barack Obama's portraits are not all alike (speaking, another
room), the others are other people (Joe Biden, Eileen Collins) or no one (a rocket).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap_lite import identity
from faceswap_lite.extract.align import transform_points
from faceswap_lite.extract.sources import read_image
from faceswap_lite.extract.worker import OTHER_PERSON
from faceswap_lite.faceset import DESCRIPTOR_SIZE, FORMAT_VERSION, list_faces, read_face, read_meta
from faceswap_lite.identity import IdentityError

from ..helpers import PHOTOS, extract, run_cli

OBAMA = ["obama.jpg", "obama2.jpg", "obama3.jpg"]
OTHERS = ["biden.jpg", "astronaut.jpg"]


def _names(out: Path) -> list[str]:
    return [p.name for p in list_faces(out)]


def _from(out: Path, photo: str) -> bool:
    return any(n.startswith(Path(photo).stem + "-") for n in _names(out))  # <stem>-<hash>_...


@pytest.fixture(scope="module")
def others_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/photos without obama.jpg (the reference), so the filter is tried on photos it has not seen."""
    folder = tmp_path_factory.mktemp("photos")
    for photo in OBAMA[1:] + OTHERS + ["rocket.jpg"]:
        shutil.copy(PHOTOS / photo, folder / photo)
    return folder


def test_every_face_has_its_descriptor(photo_faces):
    _, out = photo_faces
    for path in list_faces(out):
        rgb, meta = read_face(path)
        assert meta.version == FORMAT_VERSION == 2
        assert meta.descriptor is not None and meta.descriptor.shape == (DESCRIPTOR_SIZE,)
        source = read_image(PHOTOS / Path(meta.source).name)
        # Stored (5 decimals) = computed again on the source; the crop gives nearly the same one.
        landmarks = transform_points(cv2.invertAffineTransform(meta.matrix), meta.landmarks)
        again = identity.descriptor(source, landmarks)
        assert identity.distance(again, meta.descriptor) < 0.01, path.name
        assert identity.distance(identity.descriptor(rgb, meta.landmarks), meta.descriptor) < 0.06, path.name


def test_one_person_within_threshold_of_their_centre(photo_faces):
    _, out = photo_faces
    obama = np.stack([read_meta(p).descriptor for p in list_faces(out) if p.name.startswith("obama")])
    assert len(obama) == 3
    centre = identity.centre(obama)
    assert np.all(identity.distances(obama, centre[None]) < identity.DEFAULT_THRESHOLD)
    others = np.stack([read_meta(p).descriptor for p in list_faces(out) if not p.name.startswith("obama")])
    assert np.all(identity.distances(others, centre[None]) > identity.DEFAULT_THRESHOLD)


def test_identity_keeps_one_person(others_folder: Path, tmp_path: Path):
    summary = extract([others_folder], tmp_path / "f", identity=(str(PHOTOS / "obama.jpg"),))
    out = tmp_path / "f"
    assert all(_from(out, p) for p in OBAMA[1:]) and not any(_from(out, p) for p in OTHERS)
    assert summary.faces_written == 2 and summary.skipped_faces[OTHER_PERSON] == 2
    assert "Skipped: 2 faces: of other people" in "\n".join(summary.lines())


def test_identity_from_a_face_set_and_threshold(others_folder: Path, tmp_path: Path):
    extract([PHOTOS / "obama.jpg"], tmp_path / "ref")
    summary = extract([others_folder], tmp_path / "f", identity=(str(tmp_path / "ref"),))
    assert summary.faces_written == 2 and summary.skipped_faces[OTHER_PERSON] == 2
    # Under every same-person distance here (0.34-0.42), --identity-threshold keeps nobody.
    assert extract([others_folder], tmp_path / "g", identity=(str(tmp_path / "ref"),),
                   identity_threshold=0.2).faces_written == 0


def _cli(*args: str) -> tuple[int, str]:
    result = run_cli(["extract", *args], expect=None)
    return result.exit_code, result.output


def test_bad_references_are_one_line_errors(others_folder: Path, tmp_path: Path):
    pair = tmp_path / "pair.jpg"  # two people side by side
    a, b = cv2.imread(str(PHOTOS / "biden.jpg")), cv2.imread(str(PHOTOS / "obama.jpg"))
    cv2.imwrite(str(pair), np.hstack([a[:450], b[:450]]))
    cases = [(PHOTOS / "rocket.jpg", "no face found"), (pair, "2 faces found"),
             (tmp_path / "missing.jpg", "no such file")]
    for ref, words in cases:
        code, output = _cli(str(others_folder), "-o", str(tmp_path / "out"), "--identity", str(ref), "-j", "1")
        assert code == 2 and words in output and str(ref) in output, output
        assert len(output.strip().splitlines()) == 1
        assert not (tmp_path / "out").exists()  # nothing written
    (tmp_path / "empty").mkdir()
    with pytest.raises(IdentityError, match="holds no photos or faces"):
        identity.load_references([tmp_path / "empty"], lambda rgb: [])
    code, output = _cli(str(others_folder), "-o", str(tmp_path / "out"), "--identity", str(PHOTOS / "obama.jpg"),
                        "--identity-threshold", "0")
    assert code == 2 and "--identity-threshold must be > 0" in output
