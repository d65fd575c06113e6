"""Training on 2 gloo ranks (CPU): epochs whose length changes, one clock, stops, resume, world size.

Starting processes and importing torch cost more than the training itself, so one
torch.multiprocessing spawn runs every scenario in turn in the same 2-rank process group; each
rank records what it saw in RUN/rank{r}.pt and the tests check those records.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from data_tools.dataset import GroupedDatasetWriter
from data_tools.sampler import GroupBatchSampler
from posenet_mlvae.training.checkpoint import read_checkpoint
from posenet_mlvae.config import DataConfig
from posenet_mlvae.training.data import load_split
from tiny_training import FAST, TINY

BASE = replace(FAST, groups_per_batch=2, checkpoint_every_steps=1000, val_max_images=8)
WORLD = 2
# Train-group sizes (2-29 views, as in issue 13) and seeds whose epochs change length on 2 ranks at
# K=2, M=4: with 7 groups (odd) epoch 1 is shorter than epoch 0, with 8 (even) epoch 0 is the shortest.
ODD = ((25, 19, 16, 9, 10, 3, 4), 1)
EVEN = ((2, 6, 24, 20, 27, 16, 18, 29), 3)
EPOCHS = 3
BUDGET_STEPS = 6  # steps run under a time budget before the pause
FAST_CLOCK = 1000.0  # rank 1's perf_counter runs this much faster in the time-budget scenario
SPAWN_TIMEOUT_S = 120


def write_uneven_dataset(root: Path, sizes: tuple[int, ...], seed: int = 0) -> Path:
    """Noise images (64 px, random labels) in groups of `sizes` views for 'train', plus one 4-view 'val' group."""
    rng = np.random.default_rng(seed)
    writer = GroupedDatasetWriter(root, image_size=64, with_masks=False)
    for group, size in enumerate(list(sizes) + [4]):
        for _ in range(size):
            writer.add(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
                       {"group": group, "category": "car", "split": "val" if group == len(sizes) else "train",
                        "azimuth": rng.uniform(0, 360), "elevation": rng.uniform(0, 40), "theta": 0.0,
                        "distance": 5.0, "has_pose": 1})
    return writer.close({"source": "test"})


def epoch_lengths(data_dir: Path, seed: int, epochs: int) -> list[list[int]]:
    """Batches each rank's sampler deals in each epoch, as fit builds it: [[rank 0, rank 1], ...]."""
    groups = load_split([str(data_dir)], "train", 64).group
    samplers = [GroupBatchSampler(groups, BASE.groups_per_batch, BASE.views_per_group, seed, r, WORLD)
                for r in range(WORLD)]
    lengths = []
    for epoch in range(epochs):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        lengths.append([len(s) for s in samplers])
    return lengths


def _record(out: Path, name: str, rank: int, **values) -> None:
    torch.save(values, out / name / f"rank{rank}.pt")


def _sigterm_once_training_is_under_way(run: Path) -> None:
    """SIGTERM this process (one rank only) as soon as the run's first periodic last.pt exists."""
    def wait_and_signal() -> None:
        deadline = time.time() + 60
        while not (run / "last.pt").is_file() and time.time() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait_and_signal, daemon=True).start()


def _worker(rank: int, port: int, data: dict[str, str], out: str) -> None:
    """Every scenario in turn, on one rank of a 2-rank gloo group."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    import posenet_mlvae.training.train as train
    from posenet_mlvae.training.distributed import cleanup_distributed

    out = Path(out)
    for name, seed in (("even", EVEN[1]), ("odd", ODD[1])):  # issue 13: epochs of changing length
        config = replace(BASE, epochs=EPOCHS, seed=seed)
        summary = train.fit(TINY, config, DataConfig(data_dirs=(data[name],)), out / name, device="cpu",
                            progress=False)
        _record(out, name, rank, summary=summary)

    # One clock: rank 1's runs 1000x fast; the LR schedule and the budget's end must follow rank 0's.
    models, real_build, real_clock = [], train.build_model, time.perf_counter
    train.build_model = lambda config: models.append(real_build(config)) or models[-1]
    if rank == 1:
        time.perf_counter = lambda: FAST_CLOCK * real_clock()
    try:
        summary = train.fit(TINY, replace(BASE, time_budget_min=10.0), DataConfig(data_dirs=(data["even"],)),
                            out / "budget", device="cpu", stop_at_step=BUDGET_STEPS, progress=False)
    finally:
        train.build_model, time.perf_counter = real_build, real_clock
    # parameters only: DDP gives every rank rank 0's BatchNorm statistics before each forward, each
    # rank's forward then updates its own copy (checkpoints hold rank 0's)
    _record(out, "budget", rank, summary=summary,
            weights={k: v.detach().clone() for k, v in models[0].named_parameters()})

    # SIGTERM to rank 1 alone stops both ranks at the same step; the run then resumes on 2 ranks.
    config = replace(BASE, steps=100_000, checkpoint_every_steps=3)
    if rank == 1:
        _sigterm_once_training_is_under_way(out / "sigterm")
    stopped = train.fit(TINY, config, DataConfig(data_dirs=(data["even"],)), out / "sigterm", device="cpu",
                        progress=False)
    saved_step = read_checkpoint(out / "sigterm" / "last.pt")["step"]  # fit returns after rank 0 has saved
    resumed = train.fit(TINY, replace(config, steps=stopped["step"] + 2), DataConfig(data_dirs=(data["even"],)),
                        out / "sigterm", resume=True, device="cpu", progress=False)
    _record(out, "sigterm", rank, stopped=stopped, saved_step=saved_step, resumed=resumed)

    # A single-process run's last.pt resumed on 2 ranks: every rank refuses alike (no rank left waiting).
    try:
        train.fit(TINY, replace(BASE, steps=4), DataConfig(data_dirs=(data["even"],)), out / "single", resume=True,
                  device="cpu", progress=False)
        refusal = ""
    except ValueError as error:
        refusal = str(error)
    _record(out, "single", rank, refusal=refusal)
    cleanup_distributed()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Run every scenario on 2 gloo ranks; returns the folder holding one sub-folder per scenario."""
    import torch.multiprocessing as mp

    root = tmp_path_factory.mktemp("ddp")
    data = {name: str(write_uneven_dataset(root / f"data_{name}", sizes)) for name, (sizes, _) in
            (("odd", ODD), ("even", EVEN))}
    out = root / "runs"
    for name in ("even", "odd", "budget", "sigterm"):
        (out / name).mkdir(parents=True)
    from posenet_mlvae.training.train import fit

    fit(TINY, replace(BASE, steps=4), DataConfig(data_dirs=(data["even"],)), out / "single", stop_at_step=2,
        device="cpu", progress=False)  # this process alone: a 1-rank last.pt
    context = mp.spawn(_worker, args=(_free_port(), data, str(out)), nprocs=WORLD, join=False)
    deadline = time.time() + SPAWN_TIMEOUT_S
    while not context.join(timeout=max(0.0, deadline - time.time())):
        if time.time() >= deadline:
            for process in context.processes:
                process.kill()
            done = sorted(str(p.relative_to(out)) for p in out.glob("*/rank*.pt"))
            pytest.fail(f"the 2 ranks did not finish in {SPAWN_TIMEOUT_S} s (a hang); records written: {done}")
    return out


def _records(runs: Path, name: str) -> list[dict]:
    return [torch.load(runs / name / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _val_steps(run: Path) -> list[int]:
    lines = (run / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:]]
    return [int(r[header.index("step")]) for r in rows if r[0] == "val"]


@pytest.mark.parametrize("name, sizes, seed", [("odd", *ODD), ("even", *EVEN)])
def test_each_epoch_ends_when_the_sampler_runs_out(runs, name, sizes, seed):
    """Issue 13: epochs change length; --epochs 3 runs exactly 3 epochs, every rank the same steps."""
    lengths = epoch_lengths(runs.parent / f"data_{name}", seed, EPOCHS)
    assert all(a == b for a, b in lengths), lengths  # the sampler deals every rank the same count
    per_epoch = [a for a, _ in lengths]
    if name == "odd":
        assert per_epoch[1] < per_epoch[0], per_epoch  # old loop: epoch 1 never ended (a hang)
    else:
        assert per_epoch[0] < min(per_epoch[1:]), per_epoch  # old loop: stopped inside the last epoch
    for record in _records(runs, name):
        summary = record["summary"]
        assert (summary["status"], summary["epoch"], summary["step"]) == ("done", EPOCHS, sum(per_epoch))
    assert _val_steps(runs / name) == np.cumsum(per_epoch).tolist()  # one validation at each epoch's end
    state = read_checkpoint(runs / name / "last.pt")
    assert (state["epoch"], state["step"]) == (EPOCHS, sum(per_epoch))
    assert [s["position"] for s in state["sampler"]] == [0, 0]


def test_ranks_train_on_disjoint_whole_groups(runs):
    """The groups each rank's sampler deals, epoch by epoch, as fit builds it: never shared."""
    state = read_checkpoint(runs / "even" / "last.pt")
    assert len(state["sampler"]) == len(state["rng"]) == len(state["augment_rng"]) == WORLD
    groups = load_split([str(runs.parent / "data_even")], "train", 64).group
    samplers = [GroupBatchSampler(groups, BASE.groups_per_batch, BASE.views_per_group, EVEN[1], r, WORLD)
                for r in range(WORLD)]
    for epoch in range(EPOCHS):
        seen = []
        for sampler in samplers:
            sampler.set_epoch(epoch)
            seen.append(set(groups[np.concatenate(list(sampler))].tolist()))
        assert seen[0] and seen[1] and not seen[0] & seen[1]


def test_time_budget_follows_rank_0s_clock(runs):
    """Rank 1's clock runs 1000x fast; the LR schedule follows rank 0's, so the weights stay bitwise equal."""
    records = _records(runs, "budget")
    for record in records:
        assert (record["summary"]["status"], record["summary"]["step"]) == ("stopped", BUDGET_STEPS)
    assert records[0]["summary"]["elapsed_s"] == records[1]["summary"]["elapsed_s"] < 60
    first, second = records[0]["weights"], records[1]["weights"]
    assert first.keys() == second.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, different
    saved = read_checkpoint(runs / "budget" / "last.pt")["model"]
    assert all(torch.equal(saved[k], first[k]) for k in first)


def test_sigterm_to_one_rank_stops_every_rank_at_the_same_step(runs):
    records = _records(runs, "sigterm")
    stopped = [r["stopped"] for r in records]
    assert [s["status"] for s in stopped] == ["stopped", "stopped"]
    assert [s["stop_signal"] for s in stopped] == ["", "SIGTERM"]  # rank 1 got it, rank 0 followed
    step = stopped[0]["step"]
    assert step == stopped[1]["step"] >= 3
    assert [r["saved_step"] for r in records] == [step, step]  # the stop's one last.pt is of that step
    resumed = [r["resumed"] for r in records]
    assert [(s["status"], s["step"]) for s in resumed] == [("done", step + 2)] * 2
    state = read_checkpoint(runs / "sigterm" / "last.pt")
    assert state["step"] == step + 2 and len(state["sampler"]) == WORLD
    files = sorted(p.name for p in (runs / "sigterm").iterdir() if p.is_file())
    assert [f for f in files if f.endswith(".pt") or ".tmp-" in f] == ["best.pt", "last.pt", "rank0.pt", "rank1.pt"]


def test_resume_on_another_world_size_is_refused(runs):
    """last.pt holds each rank's sampler and RNG states: another number of ranks must not take them over."""
    for record in _records(runs, "single"):  # 1-rank checkpoint, 2 ranks: both refuse
        assert "written by 1 ranks and this run has 2" in record["refusal"] and "\n" not in record["refusal"]
    assert read_checkpoint(runs / "single" / "last.pt")["step"] == 2
    from posenet_mlvae.training.train import fit

    run = runs / "sigterm"
    before = (run / "last.pt").read_bytes()
    config = replace(BASE, steps=read_checkpoint(run / "last.pt")["step"] + 2, checkpoint_every_steps=3)
    data = DataConfig(data_dirs=(str(runs.parent / "data_even"),))
    with pytest.raises(ValueError, match=r"written by 2 ranks.*this run has 1.*--nproc_per_node=2.*--init"):
        fit(TINY, config, data, run, resume=True, device="cpu", progress=False)
    assert (run / "last.pt").read_bytes() == before
