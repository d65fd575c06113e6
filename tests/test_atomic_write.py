"""data_tools.atomic_write under faults: concurrent readers, kill -9 mid-write, a full disk, fsyncs.

The writers run in child processes where a reader or a SIGKILL must meet them mid-write; the
stalling and failing file handles are patched in as `data_tools.atomic_write.open`, which is
what `atomic_open` calls to create its temporary file.
"""

import builtins
import errno
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import data_tools.atomic_write as atomic_write
from data_tools.atomic_write import (
    TEMP_MARK, atomic_open, atomic_save_npy, atomic_write_bytes, atomic_write_image, atomic_write_json,
    atomic_write_text, remove_temporaries,
)
from data_tools.dataset import GroupedDataset, GroupedDatasetWriter

REPO = Path(__file__).resolve().parents[1]
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if TEMP_MARK in p.name)


# --- plain behaviour ------------------------------------------------------------------------------

def test_round_trips_and_bad_input(tmp_path):
    atomic_write_bytes(tmp_path / "a" / "b.bin", b"\x00\x01")  # missing folders are created
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
    atomic_write_text(tmp_path / "t.txt", "voiture é\n")
    assert (tmp_path / "t.txt").read_bytes() == "voiture é\n".encode("utf-8")
    atomic_write_json(tmp_path / "j.json", {"b": np.float32(0.5), "a": 1}, sort_keys=True, default=float)
    assert (tmp_path / "j.json").read_text() == '{\n  "a": 1,\n  "b": 0.5\n}\n'
    array = np.arange(12, dtype=np.int16).reshape(3, 4)
    atomic_save_npy(tmp_path / "images", array)  # no .npy appended
    np.testing.assert_array_equal(np.load(tmp_path / "images"), array)
    with atomic_open(tmp_path / "rows.csv", "w", newline="") as f:
        f.write("a,é\r\n")
    assert (tmp_path / "rows.csv").read_bytes() == "a,é\r\n".encode("utf-8")
    assert temporaries(tmp_path) == []
    with pytest.raises(ValueError, match="'a'"):
        with atomic_open(tmp_path / "x", "a"):
            pass


def test_image_round_trip_keeps_rgb_order(tmp_path):
    import cv2

    rgb = np.zeros((6, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rgb[2, 3] = (10, 20, 30)
    path = atomic_write_image(tmp_path / "img" / "red.png", rgb)
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], rgb)  # imread gives BGR
    atomic_write_image(tmp_path / "bgr.png", rgb, color_order="bgr")
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "bgr.png")), rgb)
    grey = np.arange(30, dtype=np.uint8).reshape(5, 6)
    np.testing.assert_array_equal(cv2.imread(str(atomic_write_image(tmp_path / "g.png", grey)), 0), grey)
    assert cv2.imread(str(atomic_write_image(tmp_path / "q.jpg", rgb))).shape == (6, 5, 3)
    with pytest.raises(ValueError, match=r"'\.gif'"):
        atomic_write_image(tmp_path / "x.gif", rgb)
    with pytest.raises(ValueError, match="float32"):
        atomic_write_image(tmp_path / "x.png", rgb.astype(np.float32))
    with pytest.raises(ValueError, match="color_order"):
        atomic_write_image(tmp_path / "x.png", rgb, color_order="hsv")
    assert not (tmp_path / "x.png").exists() and temporaries(tmp_path) == []


def test_an_error_in_the_body_keeps_the_old_file(tmp_path):
    path = tmp_path / "config.json"
    atomic_write_text(path, "old")
    with pytest.raises(KeyError):
        with atomic_open(path, "w") as f:
            f.write("new, half")
            raise KeyError("boom")
    # An OSError about another file (the body's input) is passed on as it is, not blamed on `path`.
    with pytest.raises(FileNotFoundError) as caught:
        with atomic_open(path, "w") as f:
            f.write("new")
            (tmp_path / "missing-input.txt").read_text()
    assert caught.value.filename == str(tmp_path / "missing-input.txt")
    assert path.read_text() == "old" and temporaries(tmp_path) == []


def test_remove_temporaries_keeps_a_running_writer(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".last.pt{TEMP_MARK}{dead.pid}-0"
    old_style = tmp_path / f".shard-00000{TEMP_MARK}{dead.pid}.npy"  # the names before this module
    live = tmp_path / f".best.pt{TEMP_MARK}{os.getpid()}-3"
    other = tmp_path / f".metrics.csv{TEMP_MARK}{dead.pid}-1"
    for p in (stale, old_style, live, other):
        p.write_bytes(b"partial")
    (tmp_path / "last.pt").write_bytes(b"final")
    assert remove_temporaries(tmp_path, prefix="metrics") == 1 and not other.exists()
    assert remove_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "last.pt"])
    assert remove_temporaries(tmp_path / "nowhere") == 0


# --- a reader polling while a writer rewrites ----------------------------------------------------

WRITER = r'''
import io, json, sys, time
from pathlib import Path
import numpy as np
from data_tools.atomic_write import atomic_save_npy, atomic_write_bytes

def write_in_place(path, data):  # what the project must never do: readers see it half done
    with open(path, "wb") as f:
        for start in range(0, len(data), 1 << 16):
            f.write(data[start:start + (1 << 16)])
            f.flush()
            time.sleep(0.0005)

kind, style, path, rewrites = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
for version in range(rewrites):
    if kind == "json":
        data = json.dumps({"version": version, "data": [version] * 100_000}).encode()
    else:
        buffer = io.BytesIO()
        np.save(buffer, np.full(250_000, version, np.int32))
        data = buffer.getvalue()
    if style == "in-place":
        write_in_place(path, data)
    elif kind == "json":
        atomic_write_bytes(path, data)
    else:
        atomic_save_npy(path, np.load(io.BytesIO(data)))
'''


def parsed_version(kind: str, data: bytes) -> int | None:
    """The payload's version, or None when `data` is not one whole payload."""
    try:
        if kind == "json":
            payload = json.loads(data)
            version, values = payload["version"], np.asarray(payload["data"])
            return version if len(values) == 100_000 and (values == version).all() else None
        values = np.load(io.BytesIO(data))
        return int(values[0]) if values.shape == (250_000,) and (values == values[0]).all() else None
    except (ValueError, EOFError, OSError, KeyError, IndexError):
        return None


def poll_while_rewriting(tmp_path: Path, kind: str, style: str, rewrites: int = 25):
    """Read and parse the target as fast as possible while a child rewrites it `rewrites` times."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / f"payload.{kind}"
    child = subprocess.Popen([sys.executable, str(script), kind, style, str(path), str(rewrites)],
                             cwd=REPO, env=CHILD_ENV, stderr=subprocess.PIPE, text=True)
    reads, partial, versions = 0, 0, set()
    while True:
        finished = child.poll() is not None
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # before the first write
            data = None
        if data is not None:
            reads += 1
            version = parsed_version(kind, data)
            if version is None:
                partial += 1
            else:
                versions.add(version)
        if finished:
            break
    assert child.returncode == 0, child.stderr.read()
    return reads, partial, versions


@pytest.mark.parametrize("kind", ["json", "npy"])
def test_a_polling_reader_never_sees_a_partial_file(tmp_path, kind):
    reads, partial, versions = poll_while_rewriting(tmp_path, kind, "atomic")
    assert partial == 0
    assert reads >= 10 and len(versions) >= 3, (reads, versions)  # it really read during the rewrites
    assert max(versions) == 24 and temporaries(tmp_path) == []


def test_the_polling_reader_catches_a_writer_that_writes_in_place(tmp_path):
    """The harness above can fail: the same reader sees half files from a non-atomic writer."""
    _, partial, _ = poll_while_rewriting(tmp_path, "npy", "in-place")
    assert partial > 0


# --- kill -9 in the middle of a write ---------------------------------------------------------

STALLED = r'''
import sys, time
from pathlib import Path
import data_tools.atomic_write as atomic_write

job, target, marker, stall_after = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])

class StallingFile:
    """Writes `stall_after` bytes, flushes them to the kernel, says so in `marker`, then hangs."""
    def __init__(self, handle):
        self.handle, self.written = handle, 0
    def write(self, data):
        data = memoryview(data).cast("B")
        room = stall_after - self.written
        if len(data) < room:
            self.written += len(data)
            return self.handle.write(data)
        self.handle.write(data[:room])
        self.handle.flush()
        marker.write_text("stalled")
        time.sleep(120)
    def __getattr__(self, name):
        return getattr(self.handle, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)

def stall_every_write():
    real_open = open
    atomic_write.open = lambda path, mode, **kwargs: StallingFile(real_open(path, mode, **kwargs))

if job == "checkpoint":
    import torch
    from posenet_mlvae.training.checkpoint import save_checkpoint
    save_checkpoint(target, {"model": {"weight": torch.full((1000,), 1.0)}, "step": 1})  # the previous one
    stall_every_write()
    save_checkpoint(target, {"model": {"weight": torch.full((500_000,), 2.0)}, "step": 2})
else:
    import numpy as np
    from data_tools.dataset import GroupedDatasetWriter
    stall_every_write()
    writer = GroupedDatasetWriter(target, image_size=16, file_images=64, with_masks=False)
    for i in range(64):  # the 64th image fills the file and writes it
        writer.add(np.full((16, 16, 3), 2, np.uint8), {"group": i, "category": "car", "split": "train"})
'''


def start_stalling_writer(tmp_path: Path, job: str, target: Path, stall_after: int):
    """Start `job` in a child that hangs once it has written `stall_after` bytes of a file."""
    script, marker = tmp_path / "stalled.py", tmp_path / "stalled.marker"
    script.write_text(STALLED)
    child = subprocess.Popen([sys.executable, str(script), job, str(target), str(marker), str(stall_after)],
                             cwd=REPO, env=CHILD_ENV, stderr=subprocess.PIPE, text=True)
    return child, marker


def kill_when_stalled(child: subprocess.Popen, marker: Path) -> None:
    """SIGKILL the child as soon as it hangs in the middle of its write."""
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert child.poll() is None, f"the writer ended before stalling: {child.stderr.read()}"
        assert time.monotonic() < deadline, "the writer never reached the stall"
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL


def test_kill_9_mid_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    run = tmp_path / "run"
    path = run / "last.pt"
    # The child saves a checkpoint, then hangs 100 kB into the next one (importing torch here
    # meanwhile).
    child, marker = start_stalling_writer(tmp_path, "checkpoint", path, stall_after=100_000)
    import torch

    from posenet_mlvae.training.checkpoint import read_checkpoint

    kill_when_stalled(child, marker)
    previous = read_checkpoint(path)
    assert previous["step"] == 1 and torch.equal(previous["model"]["weight"], torch.full((1000,), 1.0))
    [left] = temporaries(run)  # the killed write: exactly the bytes written before the kill
    assert left.name.startswith(".last.pt") and left.stat().st_size == 100_000
    assert remove_temporaries(run) == 1
    assert sorted(p.name for p in run.iterdir()) == ["last.pt"]


def test_kill_9_mid_image_file_write_keeps_the_previous_dataset(tmp_path):
    root = tmp_path / "data"
    writer = GroupedDatasetWriter(root, image_size=16, file_images=64, with_masks=False)
    for i in range(10):
        writer.add(np.full((16, 16, 3), 1, np.uint8), {"group": i, "category": "car", "split": "train"})
    writer.close()
    kill_when_stalled(*start_stalling_writer(tmp_path, "dataset", root, stall_after=20_000))
    dataset = GroupedDataset(root)  # the old table, manifest and image file, all whole
    assert len(dataset) == 10 and (dataset.images(np.arange(10)) == 1).all()
    [left] = temporaries(root / "images")
    assert left.name.startswith(".file-00000.npy") and left.stat().st_size == 20_000
    assert remove_temporaries(root / "images") == 1
    assert sorted(p.name for p in (root / "images").iterdir()) == ["file-00000.npy"]
    assert temporaries(root) == []


# --- a full disk ---------------------------------------------------------------------------------

class FullDiskFile:
    """A file on a disk with `room` bytes left: writing more raises ENOSPC, as write(2) does."""

    def __init__(self, handle, room: int):
        self.handle, self.room = handle, room

    def write(self, data):
        data = memoryview(data).cast("B")
        if len(data) > self.room:
            self.handle.write(data[: self.room])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)


def fill_the_disk(monkeypatch, where: str) -> None:
    if where == "write":
        monkeypatch.setattr(atomic_write, "open", lambda path, mode, **kwargs:
                            FullDiskFile(builtins.open(path, mode, **kwargs), room=4096), raising=False)
    else:  # some file systems (NFS, thin volumes) report ENOSPC only at fsync
        def failing_fsync(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", failing_fsync)


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_keeps_the_previous_checkpoint_and_names_the_path(tmp_path, monkeypatch, where):
    import torch

    from posenet_mlvae.training.checkpoint import read_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "run" / "last.pt", {"model": {"weight": torch.ones(100)}, "step": 1})
    fill_the_disk(monkeypatch, where)
    with pytest.raises(OSError) as caught:
        save_checkpoint(path, {"model": {"weight": torch.zeros(100_000)}, "step": 2})
    monkeypatch.undo()
    message = str(caught.value)
    assert caught.value.errno == errno.ENOSPC
    assert str(path) in message and "No space left on device" in message and "\n" not in message
    previous = read_checkpoint(path)
    assert previous["step"] == 1 and torch.equal(previous["model"]["weight"], torch.ones(100))
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_while_writing_an_image_file_leaves_no_half_file(tmp_path, monkeypatch, where):
    writer = GroupedDatasetWriter(tmp_path, image_size=16, file_images=8, with_masks=False)
    for i in range(7):
        writer.add(np.zeros((16, 16, 3), np.uint8), {"group": i, "category": "car", "split": "train"})
    fill_the_disk(monkeypatch, where)
    with pytest.raises(OSError, match=r"cannot write .*file-00000\.npy: No space left on device"):
        writer.add(np.zeros((16, 16, 3), np.uint8), {"group": 7, "category": "car", "split": "train"})
    monkeypatch.undo()
    assert list((tmp_path / "images").iterdir()) == [] and not (tmp_path / "manifest.json").exists()


# --- durability: the file and then its folder are fsynced ---------------------------------------

def record_fsyncs(monkeypatch, watched: Path) -> list[tuple[str, int, int | None]]:
    """Patch os.fsync to log (kind, inode of the synced fd, inode `watched` has at that moment)."""
    calls = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        info = os.fstat(fd)
        kind = "folder" if stat.S_ISDIR(info.st_mode) else "file"
        calls.append((kind, info.st_ino, watched.stat().st_ino if watched.exists() else None))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return calls


def test_the_file_then_its_folder_are_fsynced_after_the_rename(tmp_path, monkeypatch):
    path = tmp_path / "out" / "metrics.json"
    atomic_write_bytes(path, b"old")
    calls = record_fsyncs(monkeypatch, path)
    old_inode = path.stat().st_ino
    atomic_write_json(path, {"a": 1})
    new_inode, folder_inode = path.stat().st_ino, path.parent.stat().st_ino
    # The temporary file (which becomes the new file) is synced while `path` is still the old
    # file; then the folder, once `path` is the new file: the rename itself is made durable.
    assert calls == [("file", new_inode, old_inode), ("folder", folder_inode, new_inode)]


def test_every_file_of_a_checkpoint_config_and_dataset_has_its_folder_fsynced(tmp_path, monkeypatch):
    import torch

    from posenet_mlvae.training.checkpoint import save_checkpoint
    from posenet_mlvae.config import DataConfig, ModelConfig, TrainConfig, save_configs

    calls = record_fsyncs(monkeypatch, tmp_path / "unused")
    save_checkpoint(tmp_path / "run" / "best.pt", {"model": {"w": torch.ones(3)}, "step": 0})
    save_configs(tmp_path / "run" / "config.json", ModelConfig(), TrainConfig(), DataConfig())
    writer = GroupedDatasetWriter(tmp_path / "data", image_size=4, file_images=2)
    for i in range(3):
        writer.add(np.zeros((4, 4, 3), np.uint8), {"group": i, "category": "car", "split": "train"},
                   np.zeros((4, 4), np.uint8))
    writer.close()
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(written) == 8  # best.pt, config.json, 2 image files, 2 mask files, records, manifest
    pairs = [(a[:2], b[:2]) for a, b in zip(calls, calls[1:])]
    for path in written:
        assert (("file", path.stat().st_ino), ("folder", path.parent.stat().st_ino)) in pairs, path
    assert len(calls) == 2 * len(written)


# --- the training log -----------------------------------------------------------------------------

def test_metrics_csv_is_whole_after_each_row_and_kept_on_resume(tmp_path):
    from posenet_mlvae.training.run_log import CSV_COLUMNS, RunLog

    val = {"med_err_deg": 5.0, "acc_pi_6": 0.9, "acc_pi_18": 0.5, "n": 8, "neg_elbo": 1.0, "recon": 0.5,
           "kl_obs": 0.25, "kl_content": 0.125}
    log = RunLog(tmp_path, log_every=1)
    log.validation(10, 0, val)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS) and len(lines) == 2 and lines[1].startswith("val,10,0,")
    log.finish({"status": "stopped", "step": 10, "epoch": 0, "elapsed_s": 60.0, "best_val": {}})
    resumed = RunLog(tmp_path, resume=True)
    resumed.validation(20, 1, {**val, "med_err_deg": 4.0})
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[:2] == lines and len(rows) == 3 and rows[2].startswith("val,20,1,")
    resumed.finish({"status": "done", "step": np.int64(20), "epoch": 1, "elapsed_s": 1.0, "best_val": {}})
    assert json.loads((tmp_path / "summary.json").read_text())["step"] == 20
    RunLog(tmp_path)  # a fresh run starts a fresh table
    assert (tmp_path / "metrics.csv").read_text().splitlines() == [",".join(CSV_COLUMNS)]
    assert temporaries(tmp_path) == []
