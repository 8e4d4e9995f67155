"""Regenerate the stored peer values the loss tests compare against.

Each ``tools/references/<loss>.py`` computes its peer's per-item values on the shared cases
(tools/references/cases.py) and writes tests/losses/refs/<loss>.json. Run all of them:

    python tools/make_loss_references.py            # needs the [test] extras (the peer libraries)
    python tools/make_loss_references.py ssim gmsd  # only some
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE.parent))
    scripts = sorted((HERE / "references").glob("*.py"))
    for script in scripts:
        if "__main__" not in script.read_text() or (names and script.stem not in names):
            continue  # a module the scripts share (cases, common, lpips_weights), or not asked for
        print(f"== {script.stem}")
        runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
