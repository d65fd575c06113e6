"""Training: ML-VAE + pose head on K groups x M views, single process or torchrun/DDP.

    fit(ModelConfig(), TrainConfig(steps=3000), DataConfig(data_dirs=("/tmp/cars",)), "runs/demo")

`train_step` is one optimisation step (forward, loss, backward, GradScaler unscale, clip, AdamW,
then the weights' EMA when `ema_decay` > 0), the step that `posenet-mlvae bench train` times too;
with `TrainConfig.compile` its forward pass and loss (`forward_loss`) run through torch.compile;
`train_one_epoch` runs steps until the sampler runs out; `fit` builds a `TrainState`, loops over
epochs (validating at each end) and checkpoints. Under torchrun every rank takes the same steps:
the sampler deals every rank the same number of batches (checked at each epoch start), and every
decision to stop (run length, signal, non-finite loss) is taken by all ranks together after the
same step.

Run folder (written by rank 0 only): config.json (all three configs), last.pt (resume state,
rewritten every `checkpoint_every_steps` and at the end or on stop), best.pt (lowest val MedErr),
metrics.csv and TensorBoard event files in tb/. With an EMA of the weights, validation scores the
EMA and checkpoints hold it as "model" (what evaluate, export and --init read), with the
optimizer's own weights beside it as "training_model" for resume. Every checkpoint records
`crop_rule`, the crop rule of the training datasets (`data.common_crop_rule`; None if they recorded
none), which a resumed run keeps. `resume=True` continues from last.pt exactly: model, optimizer,
LR schedule position, GradScaler, epoch, step, and each rank's sampler position and torch, numpy,
python and augmentation RNG states; a last.pt written by another number of ranks is refused (those
states belong to its ranks). SIGTERM or Ctrl-C to any rank finishes the current step on every rank,
writes last.pt and returns cleanly; a non-finite loss stops with a message naming the step and the
term and leaves the last good last.pt untouched. The LR follows a linear warm-up then a cosine
decay over the run's length: steps, the exact number of batches of the epochs asked for, or the
time budget (then the schedule position is the fraction of the budget used on rank 0's clock, which
every rank follows; resume is exact in everything but timing).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from data_tools.image.preprocess import CropRule
from data_tools.sampler import GroupBatchSampler
from posenet_mlvae.training.checkpoint import (capture_rng_state, load_state_strict, read_checkpoint, restore_rng_state,
                                      save_checkpoint)
from posenet_mlvae.config import DataConfig, ModelConfig, TrainConfig, model_config_from_dict, save_configs, to_dict
from posenet_mlvae.training.data import Batch, SplitData, common_crop_rule, load_split, make_batch
from posenet_mlvae.training.labels import keep_labels, label_summary, labelled_rows_only, sampler_repeats
from posenet_mlvae.training.distributed import (DistInfo, all_gather_objects, all_true, barrier, main_value_and_any,
                                       min_max_over_ranks, setup_distributed)
from posenet_mlvae.network.losses import LossTerms, mlvae_loss
from posenet_mlvae.network.model import build_model, count_parameters
from posenet_mlvae.training.run_log import RunLog
from posenet_mlvae.training.validation import validate
from posenet_mlvae.training.weight_average import weight_average


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


@dataclass(frozen=True)
class RunLength:
    """How long a run is: `steps` optimizer steps, or (steps 0) `budget_s` seconds on rank 0's clock."""

    steps: int
    budget_s: float = 0.0

    @classmethod
    def of(cls, tc: TrainConfig, sampler: GroupBatchSampler) -> "RunLength":
        """tc.steps, else the batches of tc.epochs epochs (their counts differ), else the time budget."""
        if tc.steps:
            return cls(tc.steps)
        if tc.epochs:
            return cls(sum(sampler.batches_in_epoch(epoch) for epoch in range(tc.epochs)))
        if tc.time_budget_min > 0:
            return cls(0, tc.time_budget_min * 60.0)
        raise ValueError("no run length: give --steps, --epochs or --time-budget")

    def progress(self, step: int, elapsed_s: float) -> float:
        return step / self.steps if self.steps else elapsed_s / self.budget_s

    def reached(self, step: int, elapsed_s: float) -> bool:
        return step >= self.steps if self.steps else elapsed_s >= self.budget_s


@dataclass
class TrainState:
    """What training steps read and change; last.pt stores it (with the configs) for an exact resume."""

    model: nn.Module  # the unwrapped model: what checkpoints hold
    net: nn.Module  # what a step calls: DistributedDataParallel(model) under torchrun, else model itself
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    sampler: GroupBatchSampler
    augment_rng: torch.Generator
    device: torch.device
    autocast: torch.dtype | None  # mixed-precision dtype of the forward pass (`autocast_dtype`); None = float32
    step: int = 0
    epoch: int = 0
    elapsed_s: float = 0.0  # training time so far on rank 0's clock: the same value on every rank
    best_val: dict = field(default_factory=lambda: {"med_err_deg": float("inf")})
    clock_zero: float = 0.0  # this process's time.perf_counter() when elapsed_s was 0
    average: AveragedModel | None = None  # EMA of the weights (tc.ema_decay > 0): what is validated and saved
    compiled: Callable[..., LossTerms] | None = None  # torch.compile(forward_loss) (tc.compile) until it fails

    @property
    def scored_model(self) -> nn.Module:
        """The weights validation scores and checkpoints give as "model": the EMA when kept, else the model."""
        return self.average.module if self.average is not None else self.model


def autocast_dtype(amp: bool, device: torch.device) -> torch.dtype | None:
    """The forward pass's mixed-precision dtype (TrainConfig.amp): float16 with a GradScaler on CUDA;
    bfloat16 on a CPU with AMX matrix tiles, where oneDNN runs bfloat16 convolutions natively;
    None (float32) elsewhere, where bfloat16 would be emulated and slower."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        return torch.bfloat16
    return None


def check_input_norm(stored: dict[str, Any] | None, model_config: ModelConfig, init: str) -> None:
    """Refuse `--init` weights whose pose trunk learnt from another input normalisation: the
    shapes match, so they would load and silently read differently scaled inputs."""
    if stored is None:
        return
    norm = model_config_from_dict(stored).pose_input_norm
    if norm != model_config.pose_input_norm:
        raise ValueError(f"--init {init}: its pose trunk was trained on inputs normalised by '{norm}', "
                         f"this run's by '{model_config.pose_input_norm}'; pass --pose-input-norm {norm} "
                         "to fine-tune it")


def build_train_state(model_config: ModelConfig, tc: TrainConfig, data: SplitData, info: DistInfo,
                      init: str | None = None) -> TrainState:
    """This rank's model (pose-head angle statistics from `data`, `init` weights if given), its DDP
    wrapper, AdamW, GradScaler, group sampler (labelled groups repeated: `labels.sampler_repeats`)
    and augmentation RNG, seeded by tc.seed and the rank."""
    torch.manual_seed(tc.seed + info.rank)
    np.random.seed(tc.seed + info.rank)
    model = build_model(model_config)
    labelled = data.has_pose
    model.pose_head.set_angle_statistics(torch.from_numpy(data.elevation[labelled]),
                                         torch.from_numpy(data.theta[labelled]))
    if init:
        checkpoint = read_checkpoint(init)
        check_input_norm(checkpoint.get("model_config"), model_config, init)
        load_state_strict(model, checkpoint["model"], init)
    model = model.to(info.device, memory_format=torch.channels_last)
    net = DistributedDataParallel(model, device_ids=[info.local_rank] if info.device.type == "cuda" else None) \
        if info.enabled else model
    autocast = autocast_dtype(tc.amp, info.device)
    repeats = sampler_repeats(data, tc.labelled_share, tc.groups_per_batch, tc.views_per_group, info.world_size)
    # fused: one kernel for all parameters instead of ~10 small ops each (4 % of a CPU step).
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)
    return TrainState(model, net, optimizer,
                      torch.amp.GradScaler(info.device.type, enabled=autocast == torch.float16),
                      GroupBatchSampler(data.group, tc.groups_per_batch, tc.views_per_group, tc.seed, info.rank,
                                        info.world_size, group_repeats=repeats),
                      torch.Generator().manual_seed(tc.seed * 1000 + info.rank), info.device, autocast,
                      average=weight_average(model, tc.ema_decay),
                      compiled=torch.compile(forward_loss) if tc.compile else None)


def loss_weights(tc: TrainConfig) -> dict[str, float]:
    """The `mlvae_loss` weights of a run (training and validation alike)."""
    return dict(recon_weight=tc.recon_weight, beta_obs=tc.beta_obs, beta_content=tc.beta_content,
                lambda_pose=tc.lambda_pose, azimuth_smoothing=tc.azimuth_smoothing,
                azimuth_offset_bins=tc.azimuth_offset_bins, lambda_contrast=tc.lambda_contrast,
                contrast_temperature=tc.contrast_temperature)


def training_batch(data: SplitData, indices: np.ndarray, state: TrainState, dc: DataConfig,
                   tc: TrainConfig) -> Batch:
    """Rows `indices` gathered and augmented as training sees them (pixel weights from tc.background_weight)."""
    return make_batch(data, indices, state.device, state.augment_rng, dc.color_jitter, dc.scale_jitter,
                      dc.shift_jitter, dc.hflip, tc.background_weight, dc.grayscale, dc.random_conv)


def forward_loss(net: nn.Module, model: nn.Module, batch: Batch, tc: TrainConfig,
                 kl_scale: float | torch.Tensor = 1.0) -> LossTerms:
    """The forward pass and the loss of one training batch (net: the model, or its DDP wrapper):
    the part of a step that `TrainConfig.compile` compiles."""
    output = net(batch.images, batch.group, batch.pose_images)
    return mlvae_loss(output, batch.images, batch.azimuth, batch.elevation, batch.theta, batch.has_pose,
                      model.pose_head.angle_mean, model.pose_head.angle_std, kl_scale=kl_scale,
                      pixel_weights=batch.pixel_weights, **loss_weights(tc))


def step_loss(state: TrainState, batch: Batch, tc: TrainConfig, kl_scale: float) -> LossTerms:
    """`forward_loss` on a batch, through the compiled function when the run has one.

    The compiled call always gets a pose-trunk input and kl_scale as a tensor, so a batch without
    a random convolution or the KL warm-up does not compile it again. A compilation that fails (no
    C++ compiler, say) is reported in one line and the run goes on without it.
    """
    if state.compiled is not None:
        pose_images = batch.images if batch.pose_images is None else batch.pose_images
        try:
            return state.compiled(state.net, state.model, batch._replace(pose_images=pose_images), tc,
                                  torch.tensor(kl_scale, device=state.device))
        except Exception as error:  # noqa: BLE001 - whatever the compiler raised, the eager step still works
            reason = (str(error).strip().splitlines() or [""])[0][:200]
            print(f"train: torch.compile failed ({type(error).__name__}: {reason}); training goes on "
                  "without --compile", file=sys.stderr, flush=True)
            state.compiled = None
    return forward_loss(state.net, state.model, batch, tc, kl_scale)


def train_step(state: TrainState, batch: Batch, tc: TrainConfig,
               kl_scale: float = 1.0) -> tuple[LossTerms, float | None]:
    """forward -> loss -> backward -> GradScaler unscale -> clip -> optimizer step (-> EMA), on one batch.

    Returns the loss terms and the gradient norm before clipping. When the loss is non-finite on
    any rank every rank returns norm None before the backward pass (DDP needs all or none), and
    nothing is updated.
    """
    with torch.autocast(state.device.type, dtype=state.autocast or torch.float32, enabled=state.autocast is not None):
        terms = step_loss(state, batch, tc, kl_scale)
    if not all_true(bool(torch.isfinite(terms.total)), state.device):
        return terms, None
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(terms.total).backward()
    state.scaler.unscale_(state.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), tc.grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    if state.average is not None:
        state.average.update_parameters(state.model)
    return terms, float(grad_norm)


def train_one_epoch(state: TrainState, data: SplitData, tc: TrainConfig, dc: DataConfig, length: RunLength,
                    log: RunLog, stop_requested: Callable[[], bool], save_last: Callable[[], None]) -> str:
    """Train on the sampler's remaining batches of this epoch.

    Returns "epoch" when the sampler ran out, else, right after the step that decided it (the same
    step on every rank): "done" (the run's length is reached), "stopped" (`stop_requested()` on
    some rank) or "non-finite" (that step updated nothing).
    """
    for indices in state.sampler:
        lr = tc.lr * lr_factor(length.progress(state.step, state.elapsed_s), state.step, tc.warmup_steps,
                               tc.min_lr_ratio)
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        kl_scale = min(1.0, (state.step + 1) / tc.kl_warmup_steps) if tc.kl_warmup_steps else 1.0
        terms, grad_norm = train_step(state, training_batch(data, indices, state, dc, tc), tc, kl_scale)
        if grad_norm is None:
            log.line(_non_finite_message(terms, state.step + 1, log.out_dir))
            return "non-finite"
        state.step += 1
        state.elapsed_s, stop = main_value_and_any(time.perf_counter() - state.clock_zero, stop_requested(),
                                                   state.device)
        log.train_step(state.step, state.epoch, terms, lr, grad_norm, len(indices), state.sampler.world_size)
        if length.reached(state.step, state.elapsed_s):
            return "done"
        if stop:
            return "stopped"
        if state.step % tc.checkpoint_every_steps == 0:
            save_last()
    return "epoch"


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
    train_data = load_split(dc.data_dirs, dc.train_split, model_config.image_size, dc.categories, dc.hflip,
                            dc.asymmetric_categories)
    val_data = load_split(dc.data_dirs, dc.val_split, model_config.image_size, dc.categories, False,
                          allow_empty=True)  # None: no validation (e.g. PASCAL3D+ has train/test only)
    categories = sorted(set(train_data.category.tolist()))
    crop_rule = common_crop_rule(train_data)
    train_data = keep_labels(train_data, tc.label_fraction, tc.seed)
    if model_config.variant == "direct":  # it learns nothing from unlabelled images
        train_data = labelled_rows_only(train_data)
    state = build_train_state(model_config, tc, train_data, info, init)
    if state.sampler.batches_in_epoch(0) == 0:
        raise ValueError(f"the train split has too few groups for one batch of {tc.groups_per_batch} groups "
                         f"x {info.world_size} ranks; lower --groups-per-batch")
    length = RunLength.of(tc, state.sampler)
    crop_rule = _resume(state, out_dir / "last.pt", info, crop_rule) if resume else crop_rule
    state.clock_zero = time.perf_counter() - state.elapsed_s
    log = RunLog(out_dir, enabled=info.is_main, resume=resume)
    most = int(state.sampler.repeats.max())
    dealt = f", labelled groups dealt up to {most}x per epoch" if most > 1 else ""
    precision = f" ({str(state.autocast).removeprefix('torch.')} autocast)" if state.autocast else ""
    precision += ", compiled (torch.compile: the first step compiles)" if state.compiled is not None else ""
    if info.is_main:
        save_configs(out_dir / "config.json", model_config, train_config, data_config,
                     {"categories": categories, "parameters": count_parameters(state.model),
                      "world_size": info.world_size})
        log.line(f"model {model_config.variant}/{model_config.backbone} "
                 f"{count_parameters(state.model) / 1e6:.2f}M params; train {len(train_data)} images / "
                 f"{len(np.unique(train_data.group))} groups, val {len(val_data) if val_data is not None else 0}; "
                 f"{len(state.sampler)} batches of {tc.groups_per_batch}x{tc.views_per_group} in epoch "
                 f"{state.epoch} x {info.world_size} rank(s)"
                 f"{f', {length.steps} steps in all' if length.steps else ''}; device {info.device}"
                 f"{precision}; crop rule "
                 f"{crop_rule.describe() if crop_rule else 'not recorded'}; {label_summary(train_data)}{dealt}")
        if val_data is None:
            log.line(f"no {dc.val_split!r} split in {list(dc.data_dirs)}: no validation, best.pt is the latest model")

    def checkpoint(name: str, val: dict | None = None) -> None:  # collective: every rank calls it
        samplers, rngs, augment_rngs = _gather_resume_state(state)
        if info.is_main:
            save_checkpoint(out_dir / name, {
                "model_config": to_dict(model_config), "train_config": to_dict(train_config),
                "data_config": to_dict(data_config),
                "metadata": {"image_size": model_config.image_size, "categories": categories},
                "crop_rule": crop_rule.to_json() if crop_rule else None, "world_size": info.world_size,
                "model": state.scored_model.state_dict(), **_training_weights(state),
                "optimizer": state.optimizer.state_dict(),
                "scaler": state.scaler.state_dict(), "sampler": samplers, "rng": rngs, "augment_rng": augment_rngs,
                "step": state.step, "epoch": state.epoch, "elapsed_s": state.elapsed_s, "best_val": state.best_val,
                "val": val or {}})

    def validate_and_keep_best() -> dict:
        if val_data is None:
            checkpoint("best.pt")
            return {}
        val = validate(state.scored_model, val_data, info.device, loss_weights(tc), tc.val_max_images, info.rank,
                       info.world_size, tc.background_weight)
        log.validation(state.step, state.epoch, val)
        if val["med_err_deg"] < state.best_val["med_err_deg"]:
            state.best_val = dict(val, step=state.step, epoch=state.epoch)
            checkpoint("best.pt", val)
        return val

    stop, last_val, validated_at = StopRequest(), {}, -1
    stop_requested = lambda: bool(stop) or (stop_at_step is not None and state.step >= stop_at_step)
    status = "done" if length.reached(state.step, state.elapsed_s) else "epoch"
    bar = log.progress(length.steps or None, initial=state.step, enabled=progress)
    with stop.installed():
        state.net.train()
        while status == "epoch":
            batches = _batches_on_every_rank(state.sampler, info.device)
            status = train_one_epoch(state, train_data, tc, dc, length, log, stop_requested,
                                     lambda: checkpoint("last.pt"))
            epoch_complete = state.sampler.position == batches
            assert epoch_complete or status != "epoch", "the sampler ran out before its own batch count"
            if status != "non-finite" and epoch_complete:  # validate (when due), keep the best, next epoch
                if state.step - max(validated_at, 0) >= tc.validate_every_steps:
                    last_val, validated_at = validate_and_keep_best(), state.step
                state.epoch += 1
                state.sampler.set_epoch(state.epoch)
        if status == "done" and validated_at != state.step:  # the run ended inside an epoch: score it
            last_val = validate_and_keep_best()
        if status != "non-finite":
            checkpoint("last.pt", last_val)
    bar.close()
    barrier()
    summary = {"status": status, "step": state.step, "epoch": state.epoch, "elapsed_s": state.elapsed_s,
               "best_val": state.best_val, "last_val": last_val, "stop_signal": stop.signal_name,
               "out_dir": str(out_dir)}
    log.finish(summary)
    return summary


def _resume(state: TrainState, path: Path, info: DistInfo, crop_rule: CropRule | None) -> CropRule | None:
    """Load last.pt into `state` (this rank's own sampler and RNG states); returns the run's crop rule.

    A checkpoint of another world size is refused: its per-rank states cannot be dealt to these ranks.
    """
    saved = read_checkpoint(path)
    ranks = int(saved.get("world_size", len(saved["sampler"])))
    if ranks != info.world_size:
        raise ValueError(f"{path} was written by {ranks} ranks and this run has {info.world_size}: resume it with "
                         f"{ranks} processes in all (e.g. torchrun --nproc_per_node={ranks} ... train --resume), or "
                         f"start a new run from its weights with --init {path}")
    if "crop_rule" in saved:  # keep the run's rule; a dataset rebuilt with another one would mix framings
        saved_rule = CropRule.from_json(saved["crop_rule"])
        if crop_rule is not None and saved_rule is not None and crop_rule != saved_rule:
            raise ValueError(f"{path} was trained on crops made with {saved_rule.describe()} but its datasets now "
                             f"record {crop_rule.describe()}; start a new run (--init {path}) to train on them")
        crop_rule = saved_rule if saved_rule is not None else crop_rule
    load_state_strict(state.model, saved.get("training_model", saved["model"]), str(path))
    if state.average is not None:  # a run saved without an EMA starts one from its weights
        averaged = "average_updates" in saved
        load_state_strict(state.average.module, saved["model"], str(path))
        state.average.n_averaged.fill_(saved["average_updates"] if averaged else 0)
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scaler.load_state_dict(saved["scaler"])
    state.sampler.load_state_dict(saved["sampler"][info.rank])
    restore_rng_state(saved["rng"][info.rank])
    state.augment_rng.set_state(saved["augment_rng"][info.rank])
    state.step, state.epoch, state.elapsed_s, state.best_val = (saved["step"], saved["epoch"], saved["elapsed_s"],
                                                                saved["best_val"])
    return crop_rule


def _training_weights(state: TrainState) -> dict[str, Any]:
    """With an EMA, the optimizer's own weights and the update count, which resume needs besides "model"."""
    if state.average is None:
        return {}
    return {"training_model": state.model.state_dict(), "average_updates": int(state.average.n_averaged)}


def _batches_on_every_rank(sampler: GroupBatchSampler, device: torch.device) -> int:
    """This epoch's batch count, checked to be the same on every rank (DDP waits forever otherwise)."""
    batches = len(sampler)
    fewest, most = min_max_over_ranks(batches, device)
    if fewest != most:
        raise ValueError(f"the ranks deal {fewest} to {most} batches in epoch {sampler.epoch}: every rank must "
                         "read the same datasets with the same configs")
    return batches


def _gather_resume_state(state: TrainState) -> tuple[list, list, list]:
    """Sampler positions and RNG states of every rank (rank r resumes from entry r)."""
    gathered = all_gather_objects((state.sampler.state_dict(), capture_rng_state(), state.augment_rng.get_state()))
    return [g[0] for g in gathered], [g[1] for g in gathered], [g[2] for g in gathered]


def _non_finite_message(terms: LossTerms, step: int, out_dir: Path) -> str:
    bad = [name for name, value in terms._asdict().items() if not bool(torch.isfinite(value))]
    first = next((n for n in bad if n != "total"), "total")
    return (f"non-finite loss at step {step}: term {first!r} = {float(getattr(terms, first).detach())} (non-finite: {bad}); "
            f"stopping without saving; the last good checkpoint is {out_dir / 'last.pt'} "
            "(lower --lr or raise --grad-clip, then --resume)")
