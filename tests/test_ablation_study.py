"""`posenet-mlvae bench ablation`: each factor off in turn, trained and scored, its table and resumption."""

import json

import numpy as np
import pytest

from gl_support import needs_egl
from posenet_mlvae.evaluation.ablation_study import AblationConfig, aggregate, format_table

#: The smallest build the demo's settings allow: 16 training + 2 + 4 unseen instances x 9 views.
TINY = ["--instances", "16", "--val-instances", "2", "--test-instances", "4", "--views", "9"]


@pytest.fixture(scope="module")
def pascal_tree(tmp_path_factory):
    from data_tools.pascal3d import miniature as fx

    root = tmp_path_factory.mktemp("pascal3d") / "PASCAL3D+_release1.1"
    fx.make_pascal3d_fixture(root)
    return root


@needs_egl
def test_bench_ablation_trains_each_factor_off_scores_three_ways_and_resumes(tmp_path, pascal_tree, capsys):
    from data_tools.dataset import GroupedDataset
    from posenet_mlvae.cli import main

    out = tmp_path / "study"
    argv = ["bench", "ablation", *TINY, "--factors", "camera", "--seeds", "3", "--steps", "2",
            "--pascal-root", str(pascal_tree), "--out", str(out), "--workers", "1", "--device", "cpu"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    default, factor = out / "data" / "car-seed3-all", out / "data" / "car-seed3-no-camera"
    # The default build is kept (every run of the seed is scored on it); the factor's is deleted.
    assert default.is_dir() and not factor.exists()
    assert GroupedDataset(default, split="test").manifest["config"]["appearance_off"] == []
    runs = {r["variant"]: r for r in json.loads((out / "ablation.json").read_text())["runs"]}
    assert set(runs) == {"all", "camera"}
    for variant, run in runs.items():
        folder = out / "runs" / f"car-seed3-{'all' if variant == 'all' else 'no-camera'}"
        trained_on = json.loads((folder / "config.json").read_text())["data"]["data_dirs"]
        assert trained_on == [str(default if variant == "all" else factor)]
        assert run["steps"] == 2 and run["seed"] == 3
        # The default-renders column is that checkpoint's evaluation on the default build's test split.
        scored = json.loads((folder / "eval-default" / "metrics.json").read_text())
        assert scored["data"] == str(default) and run["default"]["med_err_deg"] == scored["med_err_deg"]
        assert scored["n"] == 4 * 9 and run["photos"]["n"] == 4  # the miniature tree's four test cars
    # Everything on: its own renders are the default build, so the two columns agree.
    assert runs["all"]["own"] == runs["all"]["default"]
    table = (out / "ablation.md").read_text()
    assert "| everything on | 3 | 2 |" in table and "| `camera` off | 3 | 2 |" in table, table
    assert "photos flips" in table and "| everything on" in printed
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(argv) == 0  # a second start reuses both runs: no rendering, no training
    again = capsys.readouterr().out
    assert again.count("done earlier, reused") == 2 and "rendered" not in again


@needs_egl
def test_keep_data_keeps_each_factor_build_rendered_with_that_factor_off(tmp_path, capsys):
    from data_tools.dataset import GroupedDataset
    from posenet_mlvae.cli import main

    out = tmp_path / "study"
    assert main(["bench", "ablation", *TINY, "--factors", "occluders", "--seeds", "0", "--steps", "1",
                 "--out", str(out), "--workers", "1", "--keep-data", "--device", "cpu"]) == 0
    kept = GroupedDataset(out / "data" / "car-seed0-no-occluders", split="train")
    assert kept.manifest["config"]["appearance_off"] == ["occluders"]
    assert not kept.records["occluded"].any()  # no view has an occluder in front of the car
    assert GroupedDataset(out / "data" / "car-seed0-all", split="train").records["occluded"].any()
    assert "photos" not in (out / "ablation.md").read_text()  # no --pascal-root, no photo columns


def _result(variant, seed, default_med, photo_med=None, flips=None):
    result = {"variant": variant, "seed": seed, "steps": 100,
              "own": {"med_err_deg": default_med + 1, "clean_med_err_deg": default_med, "acc_pi_6": 0.9},
              "default": {"med_err_deg": default_med, "acc_pi_6": 0.8}}
    if photo_med is not None:
        result["photos"] = {"med_err_deg": photo_med, "acc_pi_6": 0.7, "acc_pi_18": 0.5, "flips": flips,
                            "errors_60_150": 2, "auroc_err_gt_30": 0.75}
    return result


def test_the_table_gives_each_variant_the_mean_and_spread_over_seeds_in_the_study_order():
    results = [_result("camera", 1, 6.0, 9.0, 30), _result("all", 0, 4.0, 6.0, 20),
               _result("camera", 0, 5.0, 8.0, 40), _result("all", 1, 5.0, 7.0, 24)]
    rows = aggregate(results, ("all", "camera"))
    assert [r["variant"] for r in rows] == ["all", "camera"] and rows[1]["seeds"] == [0, 1]
    assert rows[1]["photos_med_err_deg"] == {"mean": 8.5, "min": 8.0, "max": 9.0, "values": [8.0, 9.0]}
    assert rows[0]["photos_flips"]["mean"] == 22.0
    table = format_table(rows)
    # mean (max - min): camera off 5.50 (1.00) deg on the default renders, 35 (10) flips, 80.0 (0.0) %.
    assert "| `camera` off | 0 1 | 100 | 6.50 (1.00) | 5.50 (1.00) | 5.50 (1.00) | 80.0 (0.0) | 8.50 (1.00) |" in table
    assert "| 35 (10) |" in table and "| 0.750 (0.000) |" in table


def test_a_figure_missing_from_any_run_leaves_its_column_out():
    rows = aggregate([_result("all", 0, 4.0, 6.0, 20), _result("shapes", 0, 5.0)], ("all", "shapes"))
    table = format_table(rows)
    assert "photos" not in table and "| `shapes` off | 0 | 100 | 6.00 | 5.00 | 5.00 | 80.0 |" in table


def test_bad_study_settings_are_refused_in_words():
    with pytest.raises(ValueError, match="unknown; choose from materials"):
        AblationConfig(out="x", factors=("gloss",))
    with pytest.raises(ValueError, match="distinct seeds"):
        AblationConfig(out="x", seeds=(1, 1))
    with pytest.raises(ValueError, match="--steps 0"):
        AblationConfig(out="x", steps=0)
    with pytest.raises(ValueError, match="at least 16 instances"):
        AblationConfig(out="x", instances=4)
    with pytest.raises(ValueError, match="plane"):
        AblationConfig(out="x", category="plane")
    assert AblationConfig(out="x").variants == ("all", "materials", "shapes", "lighting", "backgrounds",
                                                "occluders", "truncation", "camera")


def test_the_command_names_a_pascal_root_without_annotations(tmp_path, capsys):
    from posenet_mlvae.cli import main

    assert main(["bench", "ablation", "--pascal-root", str(tmp_path), "--out", str(tmp_path / "s")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no Annotations/ folder" in error and not (tmp_path / "s").exists()
