"""Injected faults: disk full and lost permissions while saving, unsafe or foreign checkpoints,
broken user plugins, and fuzzed configs. Each must end in a clear one-line error or a valid run,
with nothing lost."""

from __future__ import annotations

import errno
import os
import textwrap

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faceswap_lite.cli import main
from faceswap_lite.config import SECTIONS, Config, apply_overrides, from_dict, load_config
from faceswap_lite.errors import FaceswapLiteError
from faceswap_lite.losses import LossMix
from faceswap_lite.registry import MODELS
from faceswap_lite.train.checkpoint import FORMAT_VERSION, load_checkpoint
from tools.synthetic_faces import make_face_set

from ..helpers import TINY_MODEL, sets

TINY = [*TINY_MODEL, "data.batch_size=2", "data.workers=0", "train.log_every=1",
        "train.eval_every=1000", "train.preview_every=1000", "train.save_every=2"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    make_face_set(root / "A", 6, size=64, seed=0)
    return root / "A"


def train(faces, run, extra=(), plugins=None):
    args = ["train", "-A", str(faces), "-o", str(run), *sets(TINY + list(extra))]
    if plugins:
        args += ["--plugins-dir", str(plugins)]
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize("fault", ["disk_full", "permission_lost"])
def test_save_failure_keeps_previous_checkpoint(faces, tmp_path, monkeypatch, fault):
    run = tmp_path / "run"
    assert train(faces, run, ["train.steps=2"]).exit_code == 0
    good = (run / "checkpoints" / "last.pt").read_bytes()
    if fault == "disk_full":
        def broken_save(obj, f, *a, **k):
            f.write(b"PK\x03\x04partial")  # some bytes reach the temporary file first
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(torch, "save", broken_save)
        want = "no space left on"
    else:
        real_replace = os.replace

        def broken_replace(src, dst, *a, **k):
            if str(dst).endswith(".pt"):
                raise PermissionError(errno.EACCES, "Permission denied", str(dst))
            return real_replace(src, dst, *a, **k)
        monkeypatch.setattr(os, "replace", broken_replace)
        want = "Permission denied"
    res = train(faces, run, ["train.steps=6"])
    assert res.exit_code != 0
    err = res.output.strip().splitlines()[-1]
    assert err.startswith("Error: could not write checkpoint") and want in err and "previous checkpoint is intact" in err
    assert (run / "checkpoints" / "last.pt").read_bytes() == good
    assert not list((run / "checkpoints").glob(".*.tmp"))
    monkeypatch.undo()
    res = train(faces, run, ["train.steps=4"])  # and it resumes once the disk is back
    assert res.exit_code == 0, res.output
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 4


class Payload:
    def __reduce__(self):
        return (os.system, ("echo owned > /tmp/faceswap_lite_owned",))


def test_unsafe_newer_and_foreign_checkpoints_refused(faces, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    last = run / "checkpoints" / "last.pt"
    torch.save({"format_version": 1, "step": 5, "model": Payload()}, last)
    res = train(faces, run, ["train.steps=2"])
    assert res.exit_code == 2 and "is not a faceswap-lite checkpoint (it holds Python objects" in res.output
    assert not os.path.exists("/tmp/faceswap_lite_owned")
    torch.save({"format_version": FORMAT_VERSION + 1, "step": 5}, last)
    res = train(faces, run, ["train.steps=2"])
    assert res.exit_code != 0 and "newer than this faceswap-lite reads" in res.output
    torch.save({"format_version": FORMAT_VERSION, "step": 5, "model": {"w": torch.zeros(3)}, "optimizer": {}}, last)
    res = train(faces, run, ["train.steps=6"])
    assert res.exit_code != 0 and "does not fit this model" in res.output
    assert torch.load(last, weights_only=True)["step"] == 5  # nothing overwritten


BROKEN = {
    "syntax.py": "def nope(:\n",
    "imports.py": "import definitely_not_installed_zz\n",
    "shape.py": textwrap.dedent("""
        import torch
        from faceswap_lite.registry import register_loss
        @register_loss("wrong_shape")
        class WrongShape(torch.nn.Module):
            output = "item"
            def forward(self, pred, target):
                return (pred - target).abs().mean((2, 3))
    """),
    "pyfloat.py": textwrap.dedent("""
        import torch
        from faceswap_lite.registry import register_loss
        @register_loss("py_float")
        class PyFloat(torch.nn.Module):
            def forward(self, pred, target):
                return 0.25
    """),
}


def test_broken_user_plugins_named(faces, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name, text in BROKEN.items():
        (plugins / name).write_text(text)
    # The built-ins still load and train; the broken files are warned about by name.
    res = train(faces, tmp_path / "ok", ["train.steps=1"], plugins)
    assert res.exit_code == 0, res.output
    assert "syntax.py failed to load: SyntaxError" in res.output
    assert "imports.py failed to load: ModuleNotFoundError" in res.output
    res = train(faces, tmp_path / "r1", ["train.steps=1", "loss.0.name=wrong_shape"], plugins)
    assert res.exit_code != 0 and "'wrong_shape' declares per-item output but returned shape (2, 3)" in res.output
    res = train(faces, tmp_path / "r2", ["train.steps=1", "loss.0.name=py_float"], plugins)
    assert res.exit_code != 0 and "'py_float' returned float, not a tensor" in res.output
    res = train(faces, tmp_path / "r3", ["train.steps=1", "loss.0.name=syntax"], plugins)
    assert res.exit_code != 0 and "syntax.py (SyntaxError" in res.output


# ---------------------------------------------------------------------------------------------
# Config fuzzing: random keys, types and values never give a traceback.

def config_or_clear_error(make) -> None:  # noqa: ANN001 - make() -> Config
    """``make()`` and building its losses and model either work or raise a one-line user error."""
    try:
        cfg = make()
        LossMix(cfg.loss, cfg.mask.eye_weight, cfg.mask.mouth_weight)
        with torch.device("meta"):  # check the settings without allocating a (possibly huge) model
            MODELS.build_table(cfg.model, sides=("a",))
    except FaceswapLiteError as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert isinstance(cfg, Config)


KEYS = [f"{s}.{f}" for s, f in [(s, f.name) for s in ("data", "augment", "mask", "train", "plugins")
                                  for f in __import__("dataclasses").fields(getattr(Config(), s))]]
KEYS += ["model.name", "model.width", "model.latent", "model.resolution", "loss.0.name", "loss.0.weight",
         "loss.1.window_size", "loss.0.padding", "loss.1.eps", "nope.x", "train", "loss.7.weight", "train.lr.x"]
values = st.one_of(
    st.integers(-5, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", '"adam"', '"ssim"', '"mae"', '"original"', "[]", "[[1, 0.5]]", "[1, 2]",
                     '"fp16"', "inf", "nan", "-1", "0", "64", "128", '"reflect"', "{a = 1}", "ssim", "''"]),
    st.text(max_size=12),
)
override = st.tuples(st.sampled_from(KEYS) | st.text(min_size=1, max_size=10), values).map(lambda kv: f"{kv[0]}={kv[1]}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(override, max_size=4))
def test_fuzzed_overrides_give_config_or_clear_error(overrides):
    config_or_clear_error(lambda: load_config(None, overrides))


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(SECTIONS)) | st.text(max_size=6), json_like, max_size=3))
def test_fuzzed_documents_give_config_or_clear_error(doc):
    doc = {k: (v if v is not None else {}) for k, v in doc.items()}
    config_or_clear_error(lambda: from_dict(apply_overrides(doc, [])))


def test_fuzzed_cli_runs_end_cleanly(faces, tmp_path):
    """A few fuzz-style overrides through the real CLI: exit 0, or 'Error: ...' without a traceback."""
    cases = [["train.lr=-1"], ["train.steps=0"], ["loss.0.weight=nan"], ["model.resolution=100"],
             ["train.drops=[[1, 0]]"], ["data.batch_size=1.5"], ["augment.flip=2"], ["train.betas=[0.5]"],
             ["loss.0.window_size=4"], ["mask.blur=-0.1"], ["train.steps=1", "augment.rotation=0"]]
    for i, case in enumerate(cases):
        res = CliRunner().invoke(main, ["train", "-A", str(faces), "-o", str(tmp_path / f"r{i}"),
                                        *sets(TINY + ["train.steps=1"] + case)])
        assert res.exception is None or isinstance(res.exception, SystemExit), (case, res.exception)
        if res.exit_code:
            assert res.output.strip().splitlines()[-1].startswith("Error: "), (case, res.output)
