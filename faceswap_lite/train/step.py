"""One optimiser step: the forward over every side, the loss mix, the skip of a non-finite step on
the device, and the sums the log steps read back.

A non-finite loss or gradient skips the step without a host sync: the fused Adam step takes a
``found_inf`` flag, so nothing is read back per step; the counters (:class:`Loop`'s ``acc_*``,
``streak``, ``bad_*``) stay on the device until :func:`log_metrics` and :func:`report_skips`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn

from ..config import Config
from ..device import Interrupts
from ..losses import LossMix
from ..models import face_and_mask

# The training log keeps one logger name wherever in train/ a line comes from (it prints in every line).
log = logging.getLogger("faceswap_lite.train.trainer")


class Sides(nn.Module):
    """Runs every side in one forward call (what DDP needs: one forward per backward).

    Returns ``(face, mask)`` per side; the mask is None unless the model learns one, then every side
    runs ``forward_with_mask`` (inside this module, so torch.compile compiles it too) and every
    parameter, the mask branches included, gets a gradient each step.
    """

    def __init__(self, model: nn.Module, sides: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.sides = list(sides)

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        return [face_and_mask(self.model, x, s) for x, s in zip(inputs, self.sides)]


def fused_adam_supported(device: torch.device) -> bool:
    """Whether torch's fused Adam runs on ``device``: it takes the skip flag on the device (no host sync)."""
    return device.type in ("cuda", "cpu")


def flag_nonfinite_grads(grads: list[torch.Tensor], found_inf: torch.Tensor, one: torch.Tensor) -> None:
    """Set ``found_inf`` (a float 0-d tensor) to 1 when any gradient holds NaN or inf, on the device.

    This is GradScaler's own check, ``torch._amp_foreach_non_finite_check_and_unscale_``, a private
    torch op (one fused kernel over all gradients, no host sync). With an inverse scale of 1 it only
    checks (``one``: a float 0-d 1 on ``found_inf``'s device, kept by the caller so no step allocates
    it); the gradients are left as they are. Kept behind this one function (and its test) so a
    torch release that moves it breaks one place, loudly.
    """
    if grads:
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, one)


def build_optimizer(cfg: Config, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    opt_cls = torch.optim.AdamW if cfg.train.optimizer == "adamw" else torch.optim.Adam
    return opt_cls(model.parameters(), lr=cfg.train.lr, betas=tuple(cfg.train.betas), eps=cfg.train.eps,
                   weight_decay=cfg.train.weight_decay, fused=fused_adam_supported(device))


@dataclass
class Loop:
    """What one optimiser step needs and changes: the parts, the counters and the device-side sums.

    The sums (``acc_*``, ``streak``, ``bad_*``) stay on the device between log steps: nothing is read
    back per step.
    """

    model: nn.Module
    train_model: nn.Module
    mix: LossMix
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    cfg: Config
    sides: list[str]
    device: torch.device
    amp_dtype: torch.dtype | None
    world: int
    step: int = 0
    lr_scale: float = 1.0
    rollbacks: int = 0
    ema: nn.Module | None = None  # the weights' moving average (train.ema), a copy of ``model``

    def __post_init__(self) -> None:
        self.fused = fused_adam_supported(self.device)
        n, dev = len(self.mix.names), self.device
        self.acc_total = torch.zeros((), device=dev)
        self.acc_comp = torch.zeros(len(self.sides), n, 2, device=dev)  # [side, component, unweighted/weighted]
        self.acc_n = torch.zeros((), device=dev)
        self.streak = torch.zeros((), device=dev)  # skipped steps in a row
        self.bad_comp = torch.zeros(len(self.sides), n, device=dev)  # steps each component was non-finite
        self.bad_loss = torch.zeros((), device=dev)  # steps skipped for a non-finite loss
        self.bad_grad = torch.zeros((), device=dev)  # steps skipped for a non-finite gradient only
        self.one = torch.ones((), device=dev)  # flag_nonfinite_grads' inverse scale
        if self.ema is not None:
            # torch's own EMA function (the one AveragedModel uses), called on the tensor lists
            # directly: AveragedModel.update_parameters reads its counter back each call (a host sync),
            # and the copy starts equal to the weights, which is all the counter is for.
            self.ema_update = get_ema_multi_avg_fn(self.cfg.train.ema)
            self.ema_pairs = ([*self.ema.parameters(), *self.ema.buffers()],
                              [*self.model.parameters(), *self.model.buffers()])

    def update_ema(self) -> None:
        if self.ema is not None:
            self.ema_update(*self.ema_pairs, None)

    def reset_sums(self) -> None:
        for t in (self.acc_total, self.acc_comp, self.acc_n):
            t.zero_()


def train_step(loop: Loop, batches: Sequence[Mapping[str, torch.Tensor]], lr: float) -> None:
    """One optimiser step on one batch per side; a non-finite loss or gradient skips it on the device.

    The skip flag reaches the optimiser without a host sync: fused Adam takes it (``found_inf``);
    under fp16 a non-finite loss poisons one gradient so GradScaler's own check skips the step;
    on devices without fused Adam (mps, xpu) the flag is read back (one sync per step there).
    ``loop.step`` is incremented together with the weights (interrupts are held in between).
    """
    for group in loop.optimizer.param_groups:
        group["lr"] = lr
    total, comps, finite = _losses(loop, batches)
    loss_bad, skipped = _backward(loop, total, finite)
    with Interrupts(Interrupts.HOLD):
        _optimizer_step(loop, skipped)
        loop.update_ema()
        loop.step += 1
    _accumulate(loop, total.detach(), comps.detach(), loss_bad, skipped)


def _losses(loop: Loop, batches: Sequence[Mapping[str, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
    """The forward and the loss mix of every side: (total, components [side, component, unweighted/
    weighted], whether every component is finite), all on the device."""
    dev = loop.device
    inputs = [b["input"].to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last) for b in batches]
    with torch.autocast(dev.type, dtype=loop.amp_dtype or torch.float32, enabled=loop.amp_dtype is not None):
        outputs = loop.train_model(inputs)
    total = torch.zeros((), device=dev)
    rows = []
    finite = torch.ones((), dtype=torch.bool, device=dev)
    for b, (out, pred_mask) in zip(batches, outputs):
        # The face plane is always passed: with mask.face off it is the valid image area, so the
        # border fill of the augmentation and the outside of the source frame are never trained on.
        # A learned mask is trained on the landmark face mask of the augmented target (mask.face is on).
        target, face, eyes, mouth = (b[k].to(dev, non_blocking=True) for k in ("target", "face", "eyes", "mouth"))
        res = loop.mix(out, target, face, eyes, mouth, pred_mask=pred_mask,
                       target_mask=None if pred_mask is None else face)
        total = total + res.total
        row = torch.stack([torch.stack(list(res.unweighted.values())), torch.stack(list(res.weighted.values()))], 1)
        rows.append(row)
        finite = finite & torch.isfinite(row[:, 0]).all()
    return total, torch.stack(rows), finite


def _backward(loop: Loop, total: torch.Tensor, finite: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward (of zero when the loss is not finite), the skip flags and the gradient clip.

    Returns (1 when the loss was not finite on any rank, 1 when the step is skipped), float 0-d."""
    model, opt, scaler = loop.model, loop.optimizer, loop.scaler
    opt.zero_grad(set_to_none=True)
    scaler.scale(torch.where(finite, total, torch.zeros_like(total))).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    loss_bad = (~finite).float()
    if loop.world > 1:  # a non-finite loss on any rank skips the step on all
        torch.distributed.all_reduce(loss_bad, op=torch.distributed.ReduceOp.MAX)
    skipped = loss_bad.clone()
    if scaler.is_enabled():
        if grads:
            grads[0].add_(torch.where(loss_bad > 0, float("nan"), 0.0))
        scaler.unscale_(opt)
    else:
        flag_nonfinite_grads(grads, skipped, loop.one)
    if loop.cfg.train.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), loop.cfg.train.grad_clip)
    return loss_bad, skipped


def _optimizer_step(loop: Loop, skipped: torch.Tensor) -> None:
    opt, scaler = loop.optimizer, loop.scaler
    if scaler.is_enabled():
        scaler.step(opt)  # the fused step takes GradScaler's found_inf
        scaler.update()
    elif loop.fused:
        opt.found_inf, opt.grad_scale = skipped, None
        opt.step()
        opt.found_inf = None
    elif not skipped.item():
        opt.step()


def _accumulate(loop: Loop, total: torch.Tensor, comps: torch.Tensor, loss_bad: torch.Tensor,
                skipped: torch.Tensor) -> None:
    """Add a step to the device-side sums: a skipped step counts in the skip counters only."""
    ok = skipped == 0
    loop.acc_total += torch.where(ok, total, 0.0)
    loop.acc_comp += torch.where(ok, comps, 0.0)
    loop.acc_n += ok.float()
    loop.streak.add_(1.0).mul_(skipped)
    loop.bad_comp += (~torch.isfinite(comps[..., 0])).float()
    loop.bad_loss += loss_bad
    loop.bad_grad += skipped - loss_bad


def log_metrics(loop: Loop, lr: float, faces_per_sec: float) -> dict[str, float]:
    """The training metrics since the last log step (the mean over all ranks); resets the sums."""
    if loop.world > 1:
        for t in (loop.acc_total, loop.acc_comp, loop.acc_n):
            torch.distributed.all_reduce(t)
    n = loop.acc_n.item()
    values = (loop.acc_comp / max(n, 1.0)).tolist()
    metrics = {"loss/total": loop.acc_total.item() / n if n else float("nan")}
    for i, s in enumerate(loop.sides):
        for j, name in enumerate(loop.mix.names):
            metrics[f"loss/{s}/{name}"] = values[i][j][0]
            metrics[f"loss_weighted/{s}/{name}"] = values[i][j][1]
    metrics["lr"] = lr
    metrics["perf/faces_per_sec"] = faces_per_sec * loop.world
    loop.reset_sums()
    return metrics


def report_skips(loop: Loop) -> int:
    """Warn about the steps skipped since the last report (steps, not components). Returns how many."""
    n_loss, n_grad = int(loop.bad_loss.item()), int(loop.bad_grad.item())
    if n_loss:
        names = [f"{loop.sides[i]}/{loop.mix.names[j]}" for i, j in loop.bad_comp.nonzero().tolist()]
        log.warning("non-finite loss from %s: %d step(s) skipped up to step %d", ", ".join(names), n_loss, loop.step)
    if n_grad:
        log.warning("non-finite gradient: %d step(s) skipped up to step %d (the loss was finite)", n_grad, loop.step)
    for t in (loop.bad_comp, loop.bad_loss, loop.bad_grad):
        t.zero_()
    return n_loss + n_grad
