"""Convert's work on the faces of a batch of frames: align them in the model's crop geometry, run
the model on them in batches, blend each swapped face back into its frame."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from ..data.masks import valid_area
from ..extract.align import align_face, alignment_matrix, fit_error, transform_points
from . import blend
from .model import Geometry, LoadedModel, swap_batch
from .options import ConvertOptions
from .smooth import FaceTracks


def fits(landmarks: np.ndarray, g: Geometry, max_error: float) -> bool:
    """The landmarks fit the mean face (extract's check: a bad landmark fit makes a bad swap)."""
    m = alignment_matrix(landmarks, g.size, g.padding, g.centering)
    return fit_error(transform_points(m, landmarks), g.size, g.padding, g.centering) <= max_error


class FaceSwapper:
    """Aligns, swaps and blends faces with one model and one set of options."""

    def __init__(self, model: LoadedModel, options: ConvertOptions) -> None:
        self.model = model
        self.o = options

    def align(self, index: int, rgb: np.ndarray, landmarks: list[np.ndarray], tracks: FaceTracks | None) -> list[Any]:
        """The aligned faces of frame ``index`` (those that fit, smoothed over the video's ``tracks``)."""
        g = self.model.geometry
        landmarks = [lm for lm in landmarks if fits(lm, g, self.o.max_fit_error)]
        if tracks is not None:
            landmarks = tracks.update(index, landmarks)
        return [align_face(rgb, lm, g.size, g.padding, g.centering) for lm in landmarks]

    def swap(self, faces: list[Any]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Model outputs (R×R×3 float32, R×R mask or None) for aligned faces, in batches."""
        r = self.model.resolution
        size = self.o.batch_size
        out: list[tuple[np.ndarray, np.ndarray | None]] = []
        for i in range(0, len(faces), size):
            crops = [cv2.resize(f.crop, (r, r), interpolation=cv2.INTER_AREA) if f.crop.shape[0] != r else f.crop
                     for f in faces[i:i + size]]
            x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)
            image, mask = swap_batch(self.model, x)
            images = image.permute(0, 2, 3, 1).contiguous().numpy()
            masks = [None] * len(crops) if mask is None else list(mask[:, 0].numpy())
            out += list(zip(images, masks))
        return out

    def blend(self, rgb: np.ndarray, face: Any, image: np.ndarray, learned: np.ndarray | None) -> bool:
        """Blend one swapped face (model output at R) into its frame ``rgb`` in place."""
        size = face.crop.shape[0]
        image = blend.resize_to(image, size)
        if learned is None:
            mask = blend.face_mask(face.landmarks, size, face.valid_polygon)
        else:  # the model's mask, never over the crop's fill
            mask = blend.resize_to(learned, size)
            valid = valid_area(size, face.valid_polygon)
            mask = mask if valid is None else mask * valid
        mask = blend.refine_mask(mask, self.o.erode, self.o.blur)
        original = face.crop.astype(np.float32) / 255.0
        image = blend.match_color(image, original, mask, self.o.color)
        return blend.paste(rgb, image, mask, face.matrix, self.o.blend)
