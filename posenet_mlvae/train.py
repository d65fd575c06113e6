"""Training: ML-VAE + pose head on K groups x M views, single process or torchrun/DDP.

    fit(ModelConfig(), TrainConfig(steps=3000), DataConfig(data_dirs=("/tmp/cars",)), "runs/demo")

Run folder (written by rank 0 only): config.json (all three configs), last.pt (resume state,
rewritten every `checkpoint_every_steps`, each epoch and on stop), best.pt (lowest val MedErr),
metrics.csv and TensorBoard event files in tb/. `resume=True` continues from last.pt exactly:
model, optimizer, LR schedule position, GradScaler, epoch, step, sampler position and the torch,
numpy, python and augmentation RNG states. SIGTERM or Ctrl-C finishes the current step, writes
last.pt and returns cleanly; a non-finite loss stops with a message naming the step and the term
and leaves the last good last.pt untouched. The LR follows a linear warm-up then a cosine decay
over the run's length: steps, epochs x batches per epoch, or the time budget (then the schedule
position is the fraction of training time used, and resume is exact in everything but timing).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from data_tools.sampler import GroupBatchSampler
from posenet_mlvae.checkpoint import (capture_rng_state, load_state_strict, read_checkpoint, restore_rng_state,
                                      save_checkpoint)
from posenet_mlvae.config import DataConfig, ModelConfig, TrainConfig, save_configs, to_dict
from posenet_mlvae.data import load_split, make_batch
from posenet_mlvae.distributed import all_gather_objects, all_true, any_rank, barrier, setup_distributed
from posenet_mlvae.losses import LossTerms, mlvae_loss
from posenet_mlvae.model import build_model, count_parameters
from posenet_mlvae.run_log import RunLog
from posenet_mlvae.validation import validate


def lr_factor(progress: float, step: int, warmup_steps: int, min_ratio: float) -> float:
    """Linear warm-up over `warmup_steps`, then cosine from 1 to `min_ratio` as progress goes 0 -> 1."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    cosine = min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return warm * cosine


class StopRequest:
    """Set by SIGTERM / SIGINT (Ctrl-C): the loop finishes the step, checkpoints and returns."""

    def __init__(self) -> None:
        self.signal_name = ""

    def __bool__(self) -> bool:
        return bool(self.signal_name)

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        handler = lambda signum, frame: setattr(self, "signal_name", signal.Signals(signum).name)
        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def fit(model_config: ModelConfig, train_config: TrainConfig, data_config: DataConfig, out_dir: str | Path, *,
        resume: bool = False, init: str | None = None, device: str | None = None,
        stop_at_step: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Train; returns {"status": "done"|"stopped"|"non-finite", "step", "epoch", "best_val", "last_val", ...}.

    stop_at_step: pause after this step as if stopped by a signal (checkpoint written; tests and
    scripted runs). init: a checkpoint whose model weights start this run (fine-tuning).
    """
    out_dir = Path(out_dir)
    tc, dc = train_config, data_config
    info = setup_distributed(device)
    if tc.num_threads > 0:
        torch.set_num_threads(tc.num_threads)
    torch.manual_seed(tc.seed + info.rank)
    np.random.seed(tc.seed + info.rank)
    train_data = load_split(dc.data_dirs, dc.train_split, model_config.image_size, dc.categories, dc.hflip,
                            dc.asymmetric_categories)
    val_data = load_split(dc.data_dirs, dc.val_split, model_config.image_size, dc.categories, False,
                          allow_empty=True)  # None: no validation (e.g. PASCAL3D+ has train/test only)
    categories = sorted(set(train_data.category.tolist()))

    model = build_model(model_config)
    labelled = train_data.has_pose
    model.pose_head.set_angle_statistics(torch.from_numpy(train_data.elevation[labelled]),
                                         torch.from_numpy(train_data.theta[labelled]))
    if init:
        load_state_strict(model, read_checkpoint(init)["model"], init)
    model = model.to(info.device, memory_format=torch.channels_last)
    net = DistributedDataParallel(model, device_ids=[info.local_rank] if info.device.type == "cuda" else None) \
        if info.enabled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    amp = tc.amp and info.device.type == "cuda"
    scaler = torch.amp.GradScaler(info.device.type, enabled=amp)
    sampler = GroupBatchSampler(train_data.group, tc.groups_per_batch, tc.views_per_group, tc.seed,
                                info.rank, info.world_size)
    augment_rng = torch.Generator().manual_seed(tc.seed * 1000 + info.rank)
    batches_per_epoch = len(sampler)
    if batches_per_epoch == 0:
        raise ValueError(f"the train split has too few groups for one batch of {tc.groups_per_batch} groups "
                         f"x {info.world_size} ranks; lower --groups-per-batch")
    total_steps = tc.steps or tc.epochs * batches_per_epoch
    budget_s = tc.time_budget_min * 60.0
    if not total_steps and not budget_s:
        raise ValueError("no run length: give --steps, --epochs or --time-budget")

    step, epoch, elapsed, best = 0, 0, 0.0, {"med_err_deg": float("inf")}
    if resume:
        state = read_checkpoint(out_dir / "last.pt")
        load_state_strict(model, state["model"], str(out_dir / "last.pt"))
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        sampler.load_state_dict(state["sampler"][min(info.rank, len(state["sampler"]) - 1)])
        restore_rng_state(state["rng"][min(info.rank, len(state["rng"]) - 1)])
        augment_rng.set_state(state["augment_rng"][min(info.rank, len(state["augment_rng"]) - 1)])
        step, epoch, elapsed, best = state["step"], state["epoch"], state["elapsed_s"], state["best_val"]
    log = RunLog(out_dir, enabled=info.is_main, resume=resume)
    if info.is_main:
        save_configs(out_dir / "config.json", model_config, train_config, data_config,
                     {"categories": categories, "parameters": count_parameters(model), "world_size": info.world_size})
        log.line(f"model {model_config.variant}/{model_config.backbone} {count_parameters(model) / 1e6:.2f}M params; "
                 f"train {len(train_data)} images / {len(np.unique(train_data.group))} groups, "
                 f"val {len(val_data) if val_data is not None else 0}; "
                 f"{batches_per_epoch} batches of {tc.groups_per_batch}x{tc.views_per_group} per epoch "
                 f"x {info.world_size} rank(s); device {info.device}")

    def checkpoint(name: str, val: dict | None = None) -> None:  # collective: every rank calls it
        samplers, rngs, augment_rngs = _gather_resume_state(sampler, augment_rng)
        if info.is_main:
            save_checkpoint(out_dir / name, {
                "model_config": to_dict(model_config), "train_config": to_dict(train_config),
                "data_config": to_dict(data_config),
                "metadata": {"image_size": model_config.image_size, "categories": categories},
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                "sampler": samplers, "rng": rngs, "augment_rng": augment_rngs,
                "step": step, "epoch": epoch, "elapsed_s": elapsed, "best_val": best, "val": val or {}})

    if val_data is None and info.is_main:
        log.line(f"no {dc.val_split!r} split in {list(dc.data_dirs)}: no validation, best.pt is the latest model")

    def validate_and_keep_best() -> dict:
        nonlocal best
        if val_data is None:
            checkpoint("best.pt")
            return {}
        val = validate(model, val_data, info.device, loss_weights, tc.val_max_images, info.rank, info.world_size,
                       tc.background_weight)
        log.validation(step, epoch, val)
        if val["med_err_deg"] < best["med_err_deg"]:
            best = dict(val, step=step, epoch=epoch)
            checkpoint("best.pt", val)
        return val

    loss_weights = dict(recon_weight=tc.recon_weight, beta_obs=tc.beta_obs, beta_content=tc.beta_content,
                        lambda_pose=tc.lambda_pose, azimuth_smoothing=tc.azimuth_smoothing)
    status, last_val, validated_at, stop = "done", {}, -1, StopRequest()
    # Every rank must agree to stop: the step count is shared, the clock is not (any rank's budget ends all).
    finished = lambda: bool(step >= total_steps) if total_steps else any_rank(elapsed >= budget_s, info.device)
    paused = lambda: any_rank(bool(stop) or (stop_at_step is not None and step >= stop_at_step), info.device)
    bar = log.progress(total_steps or None, initial=step, enabled=progress)
    start, elapsed_before = time.perf_counter(), elapsed
    with stop.installed():
        net.train()
        while not finished() and status == "done":
            for indices in sampler:  # --- the training loop: forward -> loss -> backward -> clip -> step ---
                progress_now = step / total_steps if total_steps else elapsed / budget_s
                for group in optimizer.param_groups:
                    group["lr"] = tc.lr * lr_factor(progress_now, step, tc.warmup_steps, tc.min_lr_ratio)
                kl_scale = min(1.0, (step + 1) / tc.kl_warmup_steps) if tc.kl_warmup_steps else 1.0
                batch = make_batch(train_data, indices, info.device, augment_rng, dc.color_jitter, dc.scale_jitter,
                                   dc.shift_jitter, dc.hflip, tc.background_weight)
                with torch.autocast(info.device.type, dtype=torch.float16, enabled=amp):
                    output = net(batch.images, batch.group)
                    terms = mlvae_loss(output, batch.images, batch.azimuth, batch.elevation, batch.theta,
                                       batch.has_pose, model.pose_head.angle_mean, model.pose_head.angle_std,
                                       kl_scale=kl_scale, pixel_weights=batch.pixel_weights, **loss_weights)
                if not all_true(bool(torch.isfinite(terms.total)), info.device):
                    status = "non-finite"
                    log.line(_non_finite_message(terms, step + 1, out_dir))
                    break
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(terms.total).backward()
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                step += 1
                elapsed = elapsed_before + time.perf_counter() - start
                log.train_step(step, epoch, terms, optimizer.param_groups[0]["lr"], float(grad_norm), len(indices),
                               info.world_size)
                if paused() or finished():
                    break
                if step % tc.checkpoint_every_steps == 0:
                    checkpoint("last.pt")
            if status != "done":
                break
            if sampler.position >= batches_per_epoch:  # epoch complete: validate, keep the best, next epoch
                last_val, validated_at = validate_and_keep_best(), step
                epoch += 1
                sampler.set_epoch(epoch)
                elapsed = elapsed_before + time.perf_counter() - start
            if paused():
                status = "stopped"
                break
        if status != "non-finite":
            if status == "done" and validated_at != step:  # the run ended inside an epoch: score it
                last_val = validate_and_keep_best()
            checkpoint("last.pt", last_val)
    bar.close()
    barrier()
    summary = {"status": status, "step": step, "epoch": epoch, "elapsed_s": elapsed, "best_val": best,
               "last_val": last_val, "stop_signal": stop.signal_name, "out_dir": str(out_dir)}
    log.finish(summary)
    return summary


def _gather_resume_state(sampler: GroupBatchSampler, augment_rng: torch.Generator) -> tuple[list, list, list]:
    """Sampler positions and RNG states of every rank (rank r resumes from entry r)."""
    gathered = all_gather_objects((sampler.state_dict(), capture_rng_state(), augment_rng.get_state()))
    return [g[0] for g in gathered], [g[1] for g in gathered], [g[2] for g in gathered]


def _non_finite_message(terms: LossTerms, step: int, out_dir: Path) -> str:
    bad = [name for name, value in terms._asdict().items() if not bool(torch.isfinite(value))]
    first = next((n for n in bad if n != "total"), "total")
    return (f"non-finite loss at step {step}: term {first!r} = {float(getattr(terms, first).detach())} (non-finite: {bad}); "
            f"stopping without saving; the last good checkpoint is {out_dir / 'last.pt'} "
            "(lower --lr or raise --grad-clip, then --resume)")
