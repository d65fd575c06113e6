"""The CLI as a user meets it: one-line errors, configs refused when made, resumed runs that keep
their flags, missing extras named, help texts that tell the truth, commands registered directly.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from posenet_mlvae.cli import COMMANDS, get_args_parser, main
from posenet_mlvae.commands.bench import BENCHES
from posenet_mlvae.config import BACKBONES, DECODE_FROM, VARIANTS, DataConfig, ModelConfig, TrainConfig


def run_cli(*argv: str, env: dict | None = None, prelude: str = "") -> subprocess.CompletedProcess:
    """`python -m posenet_mlvae.cli ARGV` in a fresh process, after `prelude` (Python code)."""
    code = prelude + "\nimport sys, runpy; sys.argv = ['posenet-mlvae', *sys.argv[1:]]; " \
                     "runpy.run_module('posenet_mlvae.cli', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


# ----------------------------------------------------------------------------- one-line errors


def test_train_on_a_missing_dataset_is_one_line_and_debug_shows_the_traceback(tmp_path):
    done = run_cli("train", "--data", "nonexistent", "--out", str(tmp_path / "x"), "--steps", "3")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "posenet-mlvae train: error: --data nonexistent: no such folder; give a grouped dataset made "
        "by `posenet-mlvae render` or `posenet-mlvae pascal3d`"]
    assert done.stdout == ""
    for debug in (["--debug", "train"], ["train", "--debug"]):
        done = run_cli(*debug, "--data", "nonexistent", "--out", str(tmp_path / "x"), "--steps", "3")
        assert done.returncode == 1 and "Traceback" in done.stderr and "ValueError" in done.stderr


@pytest.mark.parametrize("argv,names", [
    (["render", "--out", "{file}", "--instances", "1", "--views", "2", "--no-progress"], "{file}"),
    (["pascal3d", "--root", "{missing}", "--category", "car", "--out", "{tmp}/p"], "{missing}"),
    (["train", "--data", "{tmp}", "--out", "{tmp}/run", "--steps", "1", "--lr", "-1"], "--lr -1.0"),
    (["evaluate", "--checkpoint", "{missing}", "--data", "{tmp}"], "{missing}"),
    (["export", "--checkpoint", "{missing}", "--out", "{tmp}/m.onnx"], "{missing}"),
    (["predict", "--model", "{missing}", "{tmp}/x.png"], "{missing}"),
    (["bench", "infer", "--model", "{missing}"], "{missing}"),
    (["demo", "--minutes", "1", "--out", "{tmp}/demo"], "at least 3 minutes"),
])
def test_every_command_reports_a_user_error_in_one_line(argv, names, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where a folder is wanted")
    fill = {"tmp": str(tmp_path), "missing": str(tmp_path / "missing.bin"), "file": str(blocker / "data")}
    code = main([part.format(**fill) for part in argv])
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if names.format(**fill) in line]
    assert code in (1, 2) and len(lines) == 1, captured
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize("command", [["evaluate", "--checkpoint", "x.pt", "--data", "d"],
                                     ["export", "--checkpoint", "x.pt", "--out", "m.onnx"],
                                     ["bench", "sim2real", "--root", "r", "--checkpoint", "x.pt"]])
def test_a_zoom_out_of_range_is_refused_by_the_parser(command, capsys):
    with pytest.raises(SystemExit) as raised:
        main([*command, "--zoom-average", "0.6"])
    err = capsys.readouterr().err
    assert raised.value.code == 2
    assert "argument --zoom-average: '0.6' is not a number in [0, 0.5)" in err and "Traceback" not in err


def test_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    """ENOSPC from the atomic writer while `predict --overlay` writes: one line, the file named."""
    import cv2
    import numpy as np

    from test_serving import write_pose_model

    model = write_pose_model(tmp_path / "pose.onnx")
    image = tmp_path / "car.png"
    cv2.imwrite(str(image), np.zeros((20, 30, 3), np.uint8))

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code = main(["predict", "--model", str(model), str(image), "--overlay", str(tmp_path / "out")])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[-1] == (f"posenet-mlvae predict: error: cannot write {tmp_path / 'out' / 'car_pose.png'}: "
                       "No space left on device (free some space and run the command again)")
    assert not list((tmp_path / "out").iterdir())  # no partial file left


TRAIN_EXTRA = {"torch", "torchvision", "scipy", "onnx", "onnxscript", "trimesh", "moderngl", "tqdm",
               "matplotlib", "sklearn", "tensorboard"}
# Makes these top-level modules look uninstalled, as in a slim install: `import` raises
# ModuleNotFoundError and importlib.util.find_spec returns None, as for a missing package.
HIDE = textwrap.dedent("""
    import sys
    sys.modules.update(dict.fromkeys({hidden!r}))
""")



def test_a_missing_extra_is_named_in_one_line(tmp_path):
    done = run_cli("train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--steps", "3",
                   prelude=HIDE.format(hidden={"torch", "torchvision"}))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "posenet-mlvae train needs the training extra: pip install 'posenet-mlvae[train,cpu]' "
        "(torch is not installed)"]
    done = run_cli("predict", "--model", str(tmp_path / "m.onnx"), str(tmp_path / "x.png"),
                   prelude=HIDE.format(hidden={"onnxruntime", "torch"}))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "needs ONNX Runtime: pip install 'posenet-mlvae[cpu]'" in done.stderr
    help_done = run_cli("--help", prelude=HIDE.format(hidden=TRAIN_EXTRA | {"onnxruntime", "cv2"}))
    assert help_done.returncode == 0 and "predict" in help_done.stdout, help_done.stderr


def test_predict_runs_in_a_slim_install(tmp_path):
    """Base install + ONNX Runtime: predict works without anything of the train extra."""
    import cv2
    import numpy as np

    from test_serving import write_pose_model

    model = write_pose_model(tmp_path / "pose.onnx")
    for k in range(3):
        cv2.imwrite(str(tmp_path / f"car{k}.png"), np.full((20, 30, 3), 40 * k, np.uint8))
    (tmp_path / "bad.png").write_bytes(b"")
    done = run_cli("predict", "--model", str(model), str(tmp_path), "--json",
                   prelude=HIDE.format(hidden=TRAIN_EXTRA))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 4 and "predicted 3 of 4 images (1 skipped)" in done.stderr


# ----------------------------------------------------------------------------- configs refused when made


# ResNet combinations really run (one per size; the trunk is size-agnostic, and the decoder and
# content encoder of the others are the ones the conv backbone builds at the same size).
RESNET_BUILDS = {(64, "mlvae", 8), (128, "vae", 0), (224, "direct", 8)}


def test_every_render_size_either_builds_or_is_refused_with_sizes_that_work():
    """Each size `render` offers x backbone x variant x content encoder: ModelConfig refuses it
    (naming the sizes that work), or the model runs and reconstructs at that size."""
    import torch

    from posenet_mlvae.network.model import build_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny forward passes: thread start-up would dominate
    render_sizes = next(a for a in get_args_parser()._subparsers._group_actions[0].choices["render"]._actions
                        if "--size" in a.option_strings).choices
    built = []
    for size in render_sizes:
        for backbone in BACKBONES:
            for variant in VARIANTS:
                for content_width in (0, 8):
                    try:
                        config = ModelConfig(variant=variant, backbone=backbone, image_size=size,
                                             content_width=content_width, width=4, hidden_dim=16)
                    except ValueError as error:
                        assert "sizes that work: " in str(error) and f"image_size={size}" in str(error)
                        continue
                    if backbone != "conv" and (size, variant, content_width) not in RESNET_BUILDS:
                        built.append((size, backbone, variant, content_width))
                        continue  # the decoder and content encoder at this size are built with conv
                    model = build_model(config).eval()
                    with torch.no_grad():
                        out = model(torch.rand(2, 3, size, size), torch.tensor([0, 0]))
                    assert out.mu_obs.shape == (2, config.obs_dim)
                    if out.reconstruction is not None:
                        assert out.reconstruction.shape == (2, 3, config.reconstruction_size, config.reconstruction_size)
                    built.append((size, backbone, variant, content_width))
    torch.set_num_threads(threads)
    assert (224, "resnet18", "direct", 8) in built and (128, "resnet18", "mlvae", 8) in built
    assert (224, "resnet18", "mlvae", 8) not in built and (224, "conv", "direct", 0) not in built


def test_train_refuses_a_size_the_model_cannot_do_with_the_sizes_that_do(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--steps", "3",
                 "--backbone", "resnet18", "--image-size", "224"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("posenet-mlvae train: error: --image-size 224 does not fit the content encoder")
    assert "sizes that work: 64 or 128" in err and "--content-width 0" in err and "--variant 'direct'" in err


@pytest.mark.parametrize("make", [
    lambda: TrainConfig(lr=0.0), lambda: TrainConfig(checkpoint_every_steps=0),
    lambda: TrainConfig(recon_weight=-1.0), lambda: TrainConfig(min_lr_ratio=2.0),
    lambda: ModelConfig(width=0), lambda: ModelConfig(content_width=-1),
    lambda: ModelConfig(backbone="resnet18", image_size=200, variant="direct"),
    lambda: DataConfig(color_jitter=0.7),
    lambda: DataConfig(grayscale=1.5), lambda: DataConfig(random_conv=-0.1),
])
def test_configs_that_cannot_train_are_refused(make):
    with pytest.raises(ValueError, match=r"(Model|Train|Data)Config\.\w+="):
        make()


# ----------------------------------------------------------------------------- resumed runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-step run A and a run B fine-tuned from it with every non-numeric flag set."""
    from posenet_mlvae.toy_data import write_toy_dataset

    root = tmp_path_factory.mktemp("resume")
    toy = write_toy_dataset(root / "toy", groups=10, views=6, seed=0)
    other = write_toy_dataset(root / "other", groups=10, views=6, seed=1)
    small = ["--width", "4", "--decoder-width", "4", "--content-width", "4", "--groups-per-batch", "2",
             "--views-per-group", "2", "--no-progress", "--threads", "1", "--val-max-images", "8"]
    assert main(["train", "--data", str(toy), "--out", str(root / "A"), "--steps", "2", *small]) == 0
    b_flags = ["--data", str(toy), "--categories", "car", "--no-flip", "--asymmetric-categories", "car",
               "--no-amp", "--init", str(root / "A" / "last.pt")]
    assert main(["train", *b_flags, "--out", str(root / "B"), "--steps", "2", *small]) == 0
    return {"root": root, "toy": toy, "other": other, "b_flags": b_flags}


def test_resume_accepts_the_same_values(runs, capsys):
    from posenet_mlvae.training.checkpoint import read_checkpoint

    run_b = runs["root"] / "B"
    code = main(["train", "--resume", "--out", str(run_b), *runs["b_flags"], "--steps", "3", "--width", "4",
                 "--no-progress"])
    assert code == 0, capsys.readouterr()
    assert read_checkpoint(run_b / "last.pt")["step"] == 3


def test_resume_lists_every_flag_that_contradicts_the_run(runs, capsys):
    run_a, run_b = runs["root"] / "A", runs["root"] / "B"
    code = main(["train", "--resume", "--out", str(run_b), "--data", str(runs["other"]), "--categories",
                 "chair", "--asymmetric-categories", "chair", "--init", str(run_b / "last.pt"),
                 "--width", "8", "--lr", "0.002", "--steps", "9"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    for part in (f"--data {runs['other']} (the run has {runs['toy']})", "--categories chair (the run has car)",
                 "--asymmetric-categories chair (the run has car)",
                 f"--init {run_b / 'last.pt'} (the run started from {run_a / 'last.pt'})",
                 "--width 8 (the run has 4)"):
        assert part in err, (part, err)
    assert "--lr 0.002" not in err and "--steps 9" not in err  # the same value, a length flag: accepted
    code = main(["train", "--resume", "--out", str(run_a), "--no-flip", "--no-amp", "--init", str(run_b)])
    err = capsys.readouterr().err
    assert code == 2
    assert "--no-flip (the run flips images)" in err and "--no-amp (the run uses mixed precision" in err
    assert "--init" in err and "random weights" in err


def test_init_from_weights_of_another_input_normalisation_is_refused(runs, tmp_path, capsys):
    small = ["--width", "4", "--decoder-width", "4", "--content-width", "4", "--groups-per-batch", "2",
             "--views-per-group", "2", "--no-progress", "--threads", "1", "--val-max-images", "8", "--steps", "1"]
    init = runs["root"] / "A" / "last.pt"  # trained with the default, each image's own statistics
    code = main(["train", "--data", str(runs["toy"]), "--out", str(tmp_path / "ft"), "--init", str(init),
                 "--pose-input-norm", "fixed", *small])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"--init {init}" in err and "'image'" in err and "--pose-input-norm image" in err
    assert not (tmp_path / "ft" / "last.pt").exists()
    assert main(["train", "--data", str(runs["toy"]), "--out", str(tmp_path / "ok"), "--init", str(init),
                 "--pose-input-norm", "image", *small]) == 0


# ----------------------------------------------------------------------------- help and registration


def all_actions():
    """(command words, action) for every option of every subcommand."""
    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, path + [name])
            elif action.help and action.help is not argparse.SUPPRESS:
                yield path, action
    yield from walk(get_args_parser(), [])


def _same(text: str, value) -> bool:
    if isinstance(value, (list, tuple)):  # an nargs default, stated as typed: "0 1", "materials shapes"
        return text.split() == [str(v) for v in value]
    try:
        return float(text) == float(value)
    except (TypeError, ValueError):
        return text.strip("'\"") == str(value).strip("'\"")


def test_every_stated_default_is_the_real_one():
    from dataclasses import fields

    from posenet_mlvae.commands import train

    config_defaults = {f.name: f.default for cls in (ModelConfig, TrainConfig, DataConfig) for f in fields(cls)}
    checked = 0
    for path, action in all_actions():
        stated = re.search(r"\(default:? ([^\s,;)]+)\)", action.help)
        if not stated:
            continue
        real = action.default
        if path == ["train"] and action.dest in config_defaults:
            real = config_defaults[action.dest]
        if real is None or real in ((), ""):
            continue  # resolved at run time (CPU count, device, ...) or empty: the help says how
        assert _same(stated.group(1), real), (path, action.option_strings, stated.group(1), real)
        checked += 1
    assert checked > 40
    width_help = next(a.help for p, a in all_actions() if p == ["train"] and "--width" in a.option_strings)
    assert "(default 16)" in width_help and ModelConfig().width == 16
    assert {f for _, _, f, _, _ in train._OPTIONS} <= set(config_defaults)


def test_render_chunk_size_in_the_help_is_what_is_written():
    from data_tools.render.plan import SyntheticConfig

    text = next(a.help for p, a in all_actions() if p == ["render"] and "--instances-per-chunk" in a.option_strings)
    stated = int(re.search(r"about (\d+) images per chunk", text).group(1))
    for views in (8, 24, 50):
        written = SyntheticConfig(views=views).chunk_instances * views
        assert stated <= written < stated + views


def test_choices_come_from_the_config_constants():
    from data_tools.image.preprocess import CROP_MODES

    choices = {(tuple(p), a.option_strings[0]): a.choices for p, a in all_actions() if a.option_strings}
    assert tuple(choices[("train",), "--variant"]) == VARIANTS
    assert tuple(choices[("train",), "--backbone"]) == BACKBONES
    assert tuple(choices[("train",), "--decode-from"]) == DECODE_FROM
    for key in ((("export",), "--crop-mode"), (("render",), "--crop-mode"), (("pascal3d",), "--resize")):
        assert tuple(choices[key]) == CROP_MODES
    devices = {tuple(p): a.choices for p, a in all_actions() if "--device" in a.option_strings}
    assert len({tuple(c) for c in devices.values()}) == 1 and len(devices) >= 3  # one definition


def test_commands_are_registered_as_modules_with_their_docstring_as_help():
    from types import ModuleType

    from posenet_mlvae.commands.subcommands import summary

    for table in (COMMANDS, BENCHES):
        for name, module in table.items():
            assert isinstance(module, ModuleType) and callable(module.add_arguments) and callable(module.run)
            assert module.__doc__.startswith(f"`posenet-mlvae {'bench ' if table is BENCHES else ''}{name}")
            assert summary(module) and "\n" not in summary(module)
    source = Path(sys.modules["posenet_mlvae.cli"].__file__).read_text()
    assert "importlib" not in source
    assert "importlib" not in Path(sys.modules["posenet_mlvae.commands.bench"].__file__).read_text()
