"""The app install: a fresh venv with only `posenet-mlvae[cpu]` runs `predict`, without torch.

pip installs a copy of this source tree (its pyproject.toml, README and packages) with the
`cpu` extra into a new virtual environment (pip's cache makes a second run quick), then the test
checks that torch is absent, that `posenet-mlvae --help` and `predict` work on an image with a
model in the demo's format (tests/pose_model_fixture.py) and agree with this environment's
`PoseEstimator`, and that a command needing the training stack says in one line which extra to
install. It prints the slim install's size next to this (full) environment's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest

from data_tools.atomic_write import atomic_write_image
from export.onnx_export import angle_difference_deg
from export.runtime import PoseEstimator
from pose_model_fixture import exported_pose_model

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("data_tools", "eval", "export", "posenet_mlvae")


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def slim_venv(tmp_path_factory) -> Path:
    """A new venv with `pip install <copy of this tree>[cpu]`; returns its bin/ folder."""
    root = tmp_path_factory.mktemp("slim")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    installed = run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                     f"{source}[cpu]"])
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return python.parent


def test_slim_install_has_no_torch_and_is_small(slim_venv):
    python = str(slim_venv / "python")
    probe = run([python, "-c", "import importlib.util as u, json; print(json.dumps("
                 "{m: u.find_spec(m) is not None for m in ['torch', 'onnx', 'moderngl', "
                 "'onnxruntime', 'cv2', 'numpy', 'export', 'posenet_mlvae']}))"])
    found = json.loads(probe.stdout)
    assert found == {"torch": False, "onnx": False, "moderngl": False, "onnxruntime": True,
                     "cv2": True, "numpy": True, "export": True, "posenet_mlvae": True}, found
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                .stdout.strip())
    slim, full = folder_mb(site), folder_mb(Path(sysconfig.get_paths()["purelib"]))
    print(f"\nslim install ([cpu]): {slim:.0f} MB of packages; this environment: {full:.0f} MB")
    assert slim < 500, f"the [cpu] install takes {slim:.0f} MB: something heavy is a base dependency"


def test_help_and_predict_work_without_torch(slim_venv, tmp_path_factory, tmp_path):
    model = exported_pose_model(tmp_path_factory) / "model.onnx"
    rng = np.random.default_rng(3)
    image = (np.add.outer(np.arange(90), np.arange(120))[:, :, None] * [1, 2, 3] % 256
             ).astype(np.uint8)
    image[20:60, 30:100] = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    atomic_write_image(tmp_path / "car.png", image)
    cli = str(slim_venv / "posenet-mlvae")

    shown = run([cli, "--help"])
    assert shown.returncode == 0 and "predict" in shown.stdout, shown.stderr
    predicted = run([cli, "predict", "--model", str(model), str(tmp_path / "car.png"),
                     "--box", "20,10,110,80", "--json", "--no-progress"])
    assert predicted.returncode == 0, predicted.stderr
    [row] = [json.loads(line) for line in predicted.stdout.splitlines() if line.startswith("{")]
    [expected] = PoseEstimator(model).predict(tmp_path / "car.png", boxes=(20, 10, 110, 80))
    got = [row["azimuth"], row["elevation"], row["theta"]]
    assert angle_difference_deg(got, [expected.azimuth, expected.elevation,
                                      expected.theta]).max() < 1e-3


@pytest.mark.parametrize("argv", [
    ["train", "--data", ".", "--out", "run", "--steps", "1"],
    ["render", "--category", "car", "--instances", "2", "--views", "2", "--out", "renders"],
    ["export", "--checkpoint", "best.pt", "--out", "model.onnx"],
])
def test_training_commands_name_the_extra_to_install(slim_venv, tmp_path, argv):
    failed = run([str(slim_venv / "posenet-mlvae"), *argv], cwd=tmp_path)
    assert failed.returncode != 0
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "posenet-mlvae[train" in lines[0], failed.stderr
    assert "Traceback" not in failed.stderr
