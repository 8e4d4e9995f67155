"""What compare checks before anything trains: its seeds, and that each face set holds out faces."""

from __future__ import annotations

from ..config import Config
from ..errors import FaceswapLiteError


class CompareError(FaceswapLiteError):
    """A compare that cannot start (its folder, faces or options)."""


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``: integers, comma-separated, each once."""
    items = [t.strip() for t in text.split(",")]
    try:
        seeds = tuple(int(t) for t in items)
    except ValueError:
        seeds = ()
    if not seeds or any(s < 0 for s in seeds):
        raise CompareError(f"--seeds {text!r}: expected seeds (integers >= 0) separated by commas, e.g. --seeds 0,1,2")
    dup = next((s for i, s in enumerate(seeds) if s in seeds[:i]), None)
    if dup is not None:
        raise CompareError(f"--seeds {text!r}: seed {dup} is given twice; each seed trains each mix once")
    return seeds


def check_split(folder: str, side: str, cfg: Config) -> None:
    """The face set exists and is large enough for the held-out faces the panel needs."""
    from ..data.faces import FaceStore
    from ..data.split import split_faces

    if cfg.data.val_fraction <= 0 or cfg.data.max_val <= 0:
        raise CompareError("compare evaluates every mix on held-out faces: data.val_fraction and data.max_val "
                           "must be > 0")
    store = FaceStore(folder, 64, cache=False)
    _, val, _ = split_faces(store.keys, cfg.data.val_fraction, cfg.data.max_val, cfg.data.val_gap)
    if not val:
        raise CompareError(f"face set {folder} (side {side.upper()}): its {len(store)} faces are too few for a "
                           f"held-out split at data.val_fraction = {cfg.data.val_fraction:g}; add faces (from more "
                           "photos or frames) or raise data.val_fraction")
