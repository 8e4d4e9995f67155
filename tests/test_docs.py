"""The README and the shipped configs cannot drift from the code: their commands and files are run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from faceswap_lite.config import load_config, recipe_path, recipes
from faceswap_lite.config_reference import commented_toml, reference_markdown

from .helpers import TINY_SAE_DIMS, model_sets, run_cli, sets

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def marked_block(marker: str) -> list[str]:
    m = re.search(rf"<!-- {marker} -->\s*```bash\n(.*?)```", README, re.S)
    assert m, f"README.md has no {marker} block"
    return [ln.strip() for ln in m.group(1).splitlines() if ln.strip() and not ln.startswith("#")]


def test_generated_docs_are_current():
    assert (ROOT / "docs" / "config.md").read_text().strip() == reference_markdown().strip(), \
        "docs/config.md is stale: run faceswap-lite config-reference > docs/config.md"
    assert (ROOT / "faceswap_lite" / "configs" / "default.toml").read_text().strip() == commented_toml().strip(), \
        "faceswap_lite/configs/default.toml is stale: run faceswap-lite config-reference --toml > faceswap_lite/configs/default.toml"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci
    assert "pytest" in marked_block("test-command")[0]
    assert "pip install ." in marked_block("main-command")[0]


@pytest.mark.parametrize("name", recipes())
def test_every_recipe_loads_and_trains_one_step(name, tmp_path, monkeypatch):
    from tools.synthetic_faces import make_face_set

    cfg = load_config(recipe_path(name))
    assert cfg.loss
    faces = tmp_path / "faces"
    make_face_set(faces, 4, size=128, seed=0)
    # Each model family's own tiny widths (sae has no width/latent, original no *_dims).
    tiny = {"sae": model_sets(TINY_SAE_DIMS)}
    extra = ["train.steps=1", "data.batch_size=2", "data.workers=0", "data.val_fraction=0.0",
             *tiny.get(cfg.model.get("name"), ["model.width=0.0625", "model.latent=32"])]
    for i, spec in enumerate(cfg.loss):  # no ImageNet download in tests: a random LPIPS trunk
        if spec["name"] == "lpips":
            extra.append(f"loss.{i}.pretrained_trunk=false")
    res = run_cli(["train", "-A", str(faces), "-o", str(tmp_path / "run"), "-c", name, *sets(extra)])
    assert "Training finished at step 1" in res.output


@pytest.mark.slow
def test_readme_commands_run(tmp_path):
    """The main command (after its install part) and every line of the worked example, with fewer steps."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    exe = Path(sys.executable).parent
    main_cmd = marked_block("main-command")[0].split("&&")[-1].strip()
    commands = [main_cmd + " --steps 3 --frames 8"] + marked_block("example")
    for cmd in commands:
        cmd = re.sub(r"train\.steps=(\d+)", lambda m: f"train.steps={max(1, int(m.group(1)) // 100)}", cmd)
        argv = shlex.split(cmd)
        assert argv[0] == "faceswap-lite", cmd
        argv[0] = str(exe / "faceswap-lite")
        res = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        assert res.returncode == 0, f"{cmd}\n{res.stdout}\n{res.stderr}"
    assert (tmp_path / "faceswap-demo" / "run" / "previews" / "latest.png").exists()
    assert (tmp_path / "preview.png").exists()
    assert (tmp_path / "runs" / "a" / "checkpoints" / "last.pt").exists()
