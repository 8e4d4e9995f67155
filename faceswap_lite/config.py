"""Run configuration: a TOML file read into frozen dataclasses, with ``--set a.b=value`` overrides.

Every key has a documented default (the ``doc`` in each field's metadata, used to generate the
config reference). Unknown keys are errors that suggest the closest known key; values are checked
against the field's type. Loss tables (``[[loss]]``) and the model table keep their plugin-specific
settings; those are checked against the plugin's constructor when the plugin is built.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError, did_you_mean
from .settings import check_value, setting


@dataclass(frozen=True)
class DataConfig:
    """[data]: how faces are read and batched."""

    batch_size: int = setting(16, "Faces per side per step (per process under torchrun).", min=1)
    workers: int = setting(2, "DataLoader worker processes per side (0 = load in the main process).", min=0)
    augment_on: str = setting("auto", "Where the augmentation and random warp run: workers (the DataLoader's processes), "
                                 "device (batched on the training device; the workers only hand over cached "
                                 "faces and masks) or auto (device on a CUDA GPU, else workers).",
                         choices=("auto", "workers", "device"))
    cache: bool = setting(True, "Decode every face once and keep it in RAM (uint8), instead of re-reading PNGs.")
    val_fraction: float = setting(0.05, "Share of each face set held out for validation (0 disables it).",
                             min=0.0, max=0.5)
    max_val: int = setting(64, "At most this many validation faces per side (whole clip segments and photos are "
                               "held out).", min=0)
    val_gap: int = setting(30, "Guard gap, in source frames, on each side of a clip's held-out segment: its faces "
                               "are used for neither training nor validation (split.json lists them as gap), so "
                               "no held-out face is within val_gap frames of a trained one (30: 1.25 s at 24 fps, "
                               "0.5 s at 60). Kept in the run's split.json.", min=0)
    val_block: int = setting(32, "No longer used: the split holds out a guarded segment of each clip (val_gap). "
                                 "Kept so the configs of older runs load; their split.json keeps its blocks.",
                             min=1)


@dataclass(frozen=True)
class AugmentConfig:
    """[augment]: random changes applied to each training face (target and input alike)."""

    rotation: float = setting(10.0, "Maximum rotation in degrees.", min=0.0, max=180.0)
    scale: float = setting(0.05, "Maximum relative zoom in or out.", min=0.0, max=0.5)
    shift: float = setting(0.05, "Maximum shift as a fraction of the size.", min=0.0, max=0.5)
    flip: float = setting(0.5, "Probability of a horizontal flip.", min=0.0, max=1.0)
    lightness: float = setting(0.3, "Probability of a brightness/contrast change.", min=0.0, max=1.0)
    color: float = setting(0.3, "Probability of a hue/saturation shift.", min=0.0, max=1.0)
    clahe: float = setting(0.0, "Probability of CLAHE (local contrast equalisation).", min=0.0, max=1.0)
    warp: float = setting(1.0, "Probability that the model input gets a random smooth warp.", min=0.0, max=1.0)
    warp_grid: int = setting(5, "Control points per side of the warp grid.", min=2, max=32)
    warp_strength: float = setting(0.03, "Control-point displacement, as a fraction of the size.", min=0.0, max=0.25)
    warp_until: float = setting(0.0, "No-warp finish (faceswap's --no-warp, DeepFaceLab's random_warp off): from this "
                                "step on the model input is the un-warped target. A value below 1 is a fraction "
                                "of train.steps (0.8: no warp in the last 20 %); 0 = warp to the end. The step it resolves "
                                "to is kept in the checkpoint, so a resume keeps it.", min=0.0)


@dataclass(frozen=True)
class MaskConfig:
    """[mask]: masks built from each face's landmarks, used to weight map losses."""

    face: bool = setting(True, "Restrict the losses to the face (jaw hull extended over the forehead).")
    eye_weight: float = setting(3.0, "Extra weight inside the eye regions: eye pixels count 1 + eye_weight times "
                                "(3 = 4x; faceswap's eye multiplier 3 means 3x). 0 = none.", min=0.0)
    mouth_weight: float = setting(2.0, "Extra weight inside the mouth region: 1 + mouth_weight times (0 = none).",
                             min=0.0)
    blur: float = setting(0.02, "Feathering of the mask edges, as a fraction of the size.", min=0.0, max=0.2)
    learn_weight: float = setting(1.0, "Weight of the learned mask's term (a model with learn_mask): the mean squared "
                                  "error between its predicted mask and the landmark face mask of the augmented "
                                  "target, logged as loss/<side>/mask. Needs face = true.", min=0.0)


@dataclass(frozen=True)
class TrainConfig:
    """[train]: the optimisation and what the loop writes."""

    steps: int = setting(20000, "Total optimiser steps (a resumed run continues up to this).", min=1)
    optimizer: str = setting("adam", "adam or adamw.", choices=("adam", "adamw"))
    lr: float = setting(5e-5, "Peak learning rate.", min=0.0)
    betas: list = setting([0.5, 0.999], "Adam betas [beta1, beta2].")
    weight_decay: float = setting(0.0, "Weight decay (decoupled for adamw).", min=0.0)
    eps: float = setting(1e-8, "Adam epsilon (added to the denominator).", min=0.0)
    warmup_steps: int = setting(500, "Linear warm-up over this many steps: step 0 uses lr/warmup_steps, step "
                                "warmup_steps-1 the full lr (0 = none). It keeps Adam's first, noisy moment "
                                "estimates from taking full-size steps.", min=0)
    drops: list = setting([[12000, 0.5], [17000, 0.2]],
                     "Scheduled drops: [[step, factor], ...]; from each step on, lr is multiplied by factor. "
                     "The default halves lr at 60 % of the 20,000 steps and divides it by 10 in all at 85 %: "
                     "a high rate finds the face quickly, the lower ones then sharpen detail (as the "
                     "original-64 and face-128 recipes do). Move the drops when you change steps.")
    grad_clip: float = setting(0.0, "Clip the gradient norm to this (0 = off).", min=0.0)
    precision: str = setting("auto", "fp32, bf16, fp16 or auto (bf16 on a CUDA GPU that has it, else fp32).",
                        choices=("auto", "fp32", "bf16", "fp16"))
    compile: bool = setting(False, "torch.compile the model.")
    device: str = setting("auto", "auto, cpu, cuda or cuda:N.")
    seed: int = setting(0, "Random seed for weights, data order and augmentation.")
    save_every: int = setting(1000, "Write a checkpoint every this many steps (and at the end).", min=1)
    keep: int = setting(3, "Keep this many periodic step checkpoints besides last.pt.", min=0)
    preview_every: int = setting(500, "Write a preview grid every this many steps.", min=1)
    preview_faces: int = setting(6, "Faces (rows) in the preview grid.", min=1, max=32)
    eval_every: int = setting(500, "Validation (masked PSNR/SSIM and the loss mix on the held-out faces) every this "
                              "many steps.", min=1)
    log_every: int = setting(50, "Log losses to TensorBoard and the console every this many steps.", min=1)
    max_nonfinite: int = setting(20, "Roll back after this many non-finite steps in a row (each is skipped).", min=1)
    blowup_factor: float = setting(3.0, "Roll back when the logged training loss stays above this many times its "
                                   "best logged value for blowup_steps steps.", min=1.0)
    blowup_steps: int = setting(500, "How long (steps) the loss must stay blown up before a roll back.", min=1)
    rollback_lr_factor: float = setting(0.5, "A roll back multiplies the learning rate by this, from then on (saved "
                                        "in the checkpoint, so a resumed run keeps it).", min=0.0, max=1.0)
    max_rollbacks: int = setting(3, "After this many roll backs a further one stops the run (exit 3, last good "
                               "checkpoint intact).", min=0)
    ema: float = setting(0.0, "Keep an exponential moving average of the weights with this decay (e.g. 0.999; "
                              "0 = off): updated on the device after every step, saved in the checkpoint, "
                              "validated beside the raw weights (val_ema/<side>/...), and used by preview, "
                              "evaluate and convert unless they are given --raw-weights.", min=0.0, lt=1.0)
    lr_find_start: float = setting(1e-6, "train --lr-find (and train.lr = auto): the sweep's first learning rate.",
                                   gt=0.0)
    lr_find_end: float = setting(1e-2, "train --lr-find: the sweep's last learning rate (the rate grows "
                                       "exponentially from lr_find_start).", gt=0.0)
    lr_find_steps: int = setting(200, "train --lr-find: training steps the sweep takes (it stops early at a "
                                      "non-finite loss or a loss 4x its best).", min=10)


@dataclass(frozen=True)
class PluginsConfig:
    """[plugins]: where user plugins live."""

    dirs: list = setting([], "Folders whose *.py files are loaded as plugins (like --plugins-dir).")


DEFAULT_LOSSES: list[dict[str, Any]] = [
    {"name": "ssim", "weight": 1.0},
    {"name": "mae", "weight": 1.0},
]
DEFAULT_MODEL: dict[str, Any] = {"name": "original"}


@dataclass(frozen=True)
class Config:
    """A whole run's configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    plugins: PluginsConfig = field(default_factory=PluginsConfig)
    model: dict = field(default_factory=lambda: dict(DEFAULT_MODEL),
                        metadata={"doc": "[model]: name of a registered model plus its settings."})
    loss: list = field(default_factory=lambda: [dict(d) for d in DEFAULT_LOSSES],
                       metadata={"doc": "[[loss]] tables: name, weight, and the loss's settings."})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {f.name: f for f in dataclasses.fields(Config)}


def _unknown(where: str, key: str, known: Iterable[str]) -> ConfigError:
    known = list(known)
    hint = did_you_mean(key, known)
    return ConfigError(f"unknown config key {where + key!r}{hint} Known keys: {', '.join(known)}.")


def _build_section(cls: type, name: str, data: Any) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"[{name}] must be a table, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown(f"{name}.", key, fields)
        kwargs[key] = check_value(f"{name}.{key}", value, hints[key], fields[key].metadata)
    cfg = cls(**kwargs)
    _validate_section(name, cfg)
    return cfg


def _validate_section(name: str, cfg: Any) -> None:
    if name == "train":
        b = cfg.betas
        if len(b) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1 for v in b):
            raise ConfigError(f"train.betas must be two numbers in [0, 1), got {b!r}")
        for i, d in enumerate(cfg.drops):
            if (not isinstance(d, list) or len(d) != 2 or isinstance(d[0], bool) or not isinstance(d[0], int)
                    or d[0] < 0 or not _finite_number(d[1]) or d[1] <= 0):
                raise ConfigError(
                    f"train.drops[{i}] must be [step, factor] with an integer step >= 0 and a finite factor > 0, "
                    f"got {d!r}"
                )
    if name == "plugins":
        for d in cfg.dirs:
            if not isinstance(d, str):
                raise ConfigError(f"plugins.dirs entries must be folder paths (strings), got {d!r}")


def _check_plugin_tables(data: Mapping[str, Any]) -> None:
    model = data.get("model", DEFAULT_MODEL)
    if not isinstance(model, Mapping):
        raise ConfigError(f"[model] must be a table with a name, got {model!r}")
    if not isinstance(model.get("name", "original"), str):
        raise ConfigError(f"model.name must be a string, got {model.get('name')!r}")
    losses = data.get("loss", DEFAULT_LOSSES)
    if not isinstance(losses, list) or not losses:
        raise ConfigError("loss must be a non-empty list of [[loss]] tables, each with a name")
    for i, spec in enumerate(losses):
        if not isinstance(spec, Mapping):
            raise ConfigError(f"loss[{i}] must be a table with a name, got {spec!r}")
        if not isinstance(spec.get("name"), str):
            raise ConfigError(f"loss[{i}] needs name = \"...\" (a registered loss), got {spec.get('name')!r}")
        w = spec.get("weight", 1.0)
        if not _finite_number(w) or w < 0:
            raise ConfigError(f"loss[{i}] ({spec['name']}) weight must be a number >= 0 and finite, got {w!r}")
    if all(spec.get("weight", 1.0) == 0 for spec in losses):
        # The loss mix would be 0 whatever the model does: no gradient, a run that only looks like training.
        raise ConfigError("every [[loss]] weight is 0: nothing would be trained; give one loss a weight > 0")


def _finite_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def from_dict(data: Mapping[str, Any]) -> Config:
    """Build a :class:`Config` from plain data (a parsed TOML document)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config must be a table, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in SECTIONS:
            raise _unknown("", key, SECTIONS)
        f = SECTIONS[key]
        if key == "model":
            kwargs[key] = dict(value) if isinstance(value, Mapping) else value
        elif key == "loss":
            kwargs[key] = [dict(v) if isinstance(v, Mapping) else v for v in value] if isinstance(value, list) else value
        else:
            kwargs[key] = _build_section(f.default_factory, key, value)  # type: ignore[misc]
    _check_plugin_tables(data)
    if "model" in kwargs:
        kwargs["model"].setdefault("name", DEFAULT_MODEL["name"])
    if "loss" in kwargs:
        for spec in kwargs["loss"]:
            spec.setdefault("weight", 1.0)
    return Config(**kwargs)


def parse_override(text: str, option: str = "--set", example: str = "train.lr=1e-4") -> tuple[list[str], Any]:
    """``"train.lr=1e-4"`` -> (["train", "lr"], 0.0001). Values are TOML (bare words become strings).

    The one parser of every ``KEY=VALUE`` option (``--set``, ``extract -s``); ``option`` and
    ``example`` name the option in errors.
    """
    if "=" not in text:
        raise ConfigError(f"{option} {text!r}: expected KEY=VALUE, e.g. {example}")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".")]
    if not key.strip() or any(not p for p in path):
        raise ConfigError(f"{option} {text!r}: the key must be dotted names like {example.split('=')[0]}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return path, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to parsed config data (a nested dict; loss tables by index)."""
    data = _deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node: Any = data
        for i, part in enumerate(path[:-1]):
            where = ".".join(path[: i + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {text!r}: {where} must be an index below {len(node)}")
                node = node[int(part)]
            else:
                if part not in node:
                    if i == 0 and part in SECTIONS:
                        node[part] = [dict(d) for d in DEFAULT_LOSSES] if part == "loss" else (
                            dict(DEFAULT_MODEL) if part == "model" else {})
                    elif i == 0:
                        raise _unknown("", part, SECTIONS)
                    else:
                        node[part] = {}
                node = node[part]
        last = path[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ConfigError(f"--set {text!r}: {'.'.join(path)} must index an existing entry")
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(f"--set {text!r}: {'.'.join(path[:-1])} is not a table")
    return data


def _deepcopy(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: _deepcopy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_deepcopy(v) for v in x]
    return x


def recipes() -> list[str]:
    """Names of the config recipes shipped with the package (configs/*.toml)."""
    from importlib.resources import files

    return sorted(p.name[:-5] for p in files("faceswap_lite.configs").iterdir() if p.name.endswith(".toml"))


def recipe_path(name: str) -> Path:
    from importlib.resources import files

    return Path(str(files("faceswap_lite.configs") / f"{name.removesuffix('.toml')}.toml"))


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a config file; a bare recipe name (``cpu-quick``) selects a shipped recipe."""
    path = Path(path)
    if not path.exists() and path.parent == Path(".") and path.name.removesuffix(".toml") in recipes():
        path = recipe_path(path.name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} not found (shipped recipes: {', '.join(recipes())})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Read ``path`` (or the defaults), apply ``--set`` overrides, check everything."""
    data = read_toml(path) if path is not None else {}
    return from_dict(apply_overrides(data, overrides))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(cfg: Config) -> str:
    """The resolved config as TOML (saved in every run folder; loads back to an equal Config)."""
    d = cfg.to_dict()
    lines: list[str] = []
    for name in ("data", "augment", "mask", "train", "plugins"):
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in d[name].items()]
        lines.append("")
    lines.append("[model]")
    lines += [f"{k} = {_toml_value(v)}" for k, v in d["model"].items()]
    lines.append("")
    for spec in d["loss"]:
        lines.append("[[loss]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in spec.items()]
        lines.append("")
    return "\n".join(lines)
