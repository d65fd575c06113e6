"""The console script: every registered subcommand parses, and --help imports nothing heavy."""

import subprocess
import sys

import pytest

from posenet_mlvae.cli import COMMANDS, main
from posenet_mlvae.commands.bench import BENCHES

HEAVY = ("torch", "cv2", "moderngl", "onnxruntime", "matplotlib", "sklearn", "trimesh", "scipy")


def test_help_is_light_and_lists_every_command():
    code = ("import sys; from posenet_mlvae.cli import get_args_parser; p = get_args_parser(); "
            "print(p.format_help()); print(sorted(m for m in %r if m in sys.modules))" % (HEAVY,))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip().endswith("[]"), f"heavy modules imported by --help: {out.splitlines()[-1]}"
    for name in ("render", "pascal3d", "image-folders", "train", "evaluate", "export", "predict", "bench", "demo"):
        assert name in COMMANDS and name in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: posenet-mlvae " + command in capsys.readouterr().out


@pytest.mark.parametrize("bench", sorted(BENCHES))
def test_every_benchmark_has_help(bench, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", bench, "--help"])
    assert exit_info.value.code == 0
    assert set(BENCHES) == {"ablation", "render", "train", "infer", "labels", "pascal3d", "sim2real"}


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_demo_rejects_a_too_short_budget(capsys):
    assert main(["demo", "--minutes", "1"]) == 2
    assert "at least 3 minutes" in capsys.readouterr().out
