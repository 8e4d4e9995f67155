"""lr_at is a pure function; checkpoints are atomic, safe to load and refuse what they must."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from faceswap_lite.runfolder import step_checkpoints, step_path
from faceswap_lite.train.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    latest_checkpoint,
    link_or_copy,
    load_checkpoint,
    prune,
    save_checkpoint,
)
from faceswap_lite.train.schedule import lr_at


def test_lr_warmup_and_drops():
    assert lr_at(0, 1e-3, warmup_steps=10) == pytest.approx(1e-4)
    assert lr_at(9, 1e-3, warmup_steps=10) == pytest.approx(1e-3)
    drops = [[100, 0.5], [200, 0.1]]
    assert lr_at(99, 1.0, drops=drops) == 1.0
    assert lr_at(100, 1.0, drops=drops) == 0.5
    assert lr_at(250, 1.0, drops=drops) == pytest.approx(0.05)
    # Drops given out of order give the same schedule.
    assert lr_at(250, 1.0, drops=drops[::-1]) == lr_at(250, 1.0, drops=drops)


def _state(step=3):
    m = torch.nn.Linear(3, 2)
    return {"step": step, "model": m.state_dict(), "config": {"train": {"lr": 1e-4}}, "metrics": {"loss/total": 0.5}}


def test_save_load_round_trip(tmp_path):
    p = save_checkpoint(tmp_path / "last.pt", _state())
    s = load_checkpoint(p)
    assert s["step"] == 3 and s["format_version"] == FORMAT_VERSION
    assert not list(tmp_path.glob(".*.tmp"))


def test_failed_write_keeps_previous(tmp_path, monkeypatch):
    p = save_checkpoint(tmp_path / "last.pt", _state(1))
    before = p.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(CheckpointError, match="no space left on .*last.pt.*previous checkpoint is intact"):
        save_checkpoint(p, _state(2))
    assert p.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_code_in_checkpoint_refused(tmp_path):
    p = tmp_path / "evil.pt"
    with open(p, "wb") as fh:
        torch.save({"format_version": 1, "step": 1, "payload": Evil()}, fh)
    with pytest.raises(CheckpointError, match=r"evil.pt is not a faceswap-lite checkpoint \(it holds Python objects"):
        load_checkpoint(p)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)


def test_newer_format_and_foreign_refused(tmp_path):
    p = tmp_path / "new.pt"
    torch.save({"format_version": FORMAT_VERSION + 1, "step": 1}, p)
    with pytest.raises(CheckpointError, match="newer than this faceswap-lite reads"):
        load_checkpoint(p)
    q = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, q)
    with pytest.raises(CheckpointError, match="not a faceswap-lite checkpoint"):
        load_checkpoint(q)


def test_truncated_falls_back_to_step_file(tmp_path):
    save_checkpoint(tmp_path / "last.pt", _state(5))
    link_or_copy(tmp_path / "last.pt", step_path(tmp_path, 5))
    data = (tmp_path / "last.pt").read_bytes()
    os.unlink(tmp_path / "last.pt")
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "last.pt")
    path, state = latest_checkpoint(tmp_path)
    assert path.name == "step_0000005.pt" and state["step"] == 5


def test_prune_keeps_newest(tmp_path):
    for s in (10, 20, 30, 40):
        save_checkpoint(tmp_path / "last.pt", _state(s))
        link_or_copy(tmp_path / "last.pt", step_path(tmp_path, s))
    prune(tmp_path, 2)
    assert [s for s, _ in step_checkpoints(tmp_path)] == [30, 40]
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 40
    assert load_checkpoint(step_path(tmp_path, 30))["step"] == 30
