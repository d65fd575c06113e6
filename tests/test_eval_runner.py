"""The evaluation runner (posenet_mlvae.evaluate) and `posenet-mlvae evaluate` on a tiny model."""

import json

import numpy as np
import pytest
import torch

from data_tools.dataset import GroupedDataset, GroupedDatasetWriter
from posenet_mlvae.checkpoint import save_checkpoint
from posenet_mlvae.config import ModelConfig, to_dict
from posenet_mlvae.evaluate import Predictions, is_grid_set, pose_metrics, predict
from posenet_mlvae.model import build_model

AZIMUTHS = (0.0, 72.0, 144.0, 216.0, 288.0)
ELEVATIONS = (0.0, 20.0)


def _write_dataset(root, groups: int = 8):
    """A grid set: `groups` instances x 5 azimuths x 2 elevations, groups 0-4 train, the rest test."""
    rng = np.random.default_rng(0)
    writer = GroupedDatasetWriter(root, image_size=64, with_masks=False)
    for g in range(groups):
        base = rng.integers(0, 255, size=3)
        for a in AZIMUTHS:
            for e in ELEVATIONS:
                image = np.clip(base + rng.normal(0, 30, size=(64, 64, 3)) + a / 4, 0, 255).astype(np.uint8)
                writer.add(image, {"group": g, "instance": f"obj{g}", "category": "car" if g % 2 else "chair",
                                   "split": "train" if g < 5 else "test", "azimuth": a, "elevation": e,
                                   "theta": 0.0, "distance": 4.0})
    writer.close({"source": "synthetic", "seed": 0})
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = _write_dataset(tmp_path_factory.mktemp("data"))
    torch.manual_seed(0)
    config = ModelConfig(width=8, obs_dim=4, content_dim=6, hidden_dim=32)
    model = build_model(config).eval()
    checkpoint = save_checkpoint(tmp_path_factory.mktemp("run") / "best.pt",
                                 {"model_config": to_dict(config), "model": model.state_dict(), "step": 7,
                                  "metadata": {"image_size": 64, "categories": ["car", "chair"]}})
    return root, model, checkpoint


def test_metrics_on_a_hand_made_case():
    # errors: azimuth off by 0, 20, 40 and 180 deg at elevation 0 -> geodesic = the azimuth gap
    true = np.array([[10.0, 0, 0], [10.0, 0, 0], [10.0, 0, 0], [10.0, 0, 0], [np.nan] * 3])
    pred = np.array([[10.0, 0, 0], [30.0, 0, 0], [50.0, 0, 0], [190.0, 0, 0], [0.0, 0, 0]])
    predictions = Predictions(
        row=np.arange(5), group=np.arange(5), category=np.array(["car", "car", "bus", "bus", "bus"]),
        true=true, has_pose=np.array([True, True, True, True, False]), pred=pred, confidence=np.ones(5),
        mu_obs=np.zeros((5, 2)), logvar_obs=np.zeros((5, 2)), mu_content=None, logvar_content=None)
    metrics = json.loads(json.dumps(pose_metrics(predictions)))  # JSON-able as written to metrics.json
    assert metrics["n"] == 4 and metrics["n_unlabelled"] == 1
    assert metrics["med_err_deg"] == pytest.approx(30.0)  # median of 0, 20, 40, 180
    assert metrics["acc_pi_6"] == 0.5 and metrics["acc_pi_18"] == 0.25
    assert metrics["per_category"]["car"] == pytest.approx(
        {"med_err_deg": 10.0, "acc_pi_6": 1.0, "acc_pi_18": 0.5, "n": 2})
    assert metrics["per_category"]["bus"]["med_err_deg"] == pytest.approx(110.0)
    assert metrics["mean_over_categories"]["med_err_deg"] == pytest.approx(60.0)
    assert metrics["mean_over_categories"]["acc_pi_6"] == pytest.approx(0.5)  # (1 + 0) / 2


def test_two_batches_give_the_pooled_result(tiny):
    root, model, _ = tiny
    dataset = GroupedDataset(root, split="test")
    rows = np.arange(len(dataset))
    pooled = predict(model, dataset, batch_size=10)
    halves = Predictions.concat([predict(model, dataset, rows[:20], batch_size=10),
                                 predict(model, dataset, rows[20:], batch_size=10)])
    assert pose_metrics(halves) == pose_metrics(pooled)
    assert np.array_equal(halves.mu_content, pooled.mu_content) and np.array_equal(halves.pred, pooled.pred)
    # other batch sizes only change float rounding inside the convolutions
    odd = predict(model, dataset, batch_size=7)
    assert np.allclose(odd.mu_obs, pooled.mu_obs, atol=1e-4)
    assert len(pooled) == 30 and pose_metrics(pooled)["n"] == 30


def test_grid_set_is_detected(tiny):
    root, _, _ = tiny
    assert is_grid_set(GroupedDataset(root, split="test"))


def main(argv):
    """`posenet-mlvae ARGV` for the evaluate command alone (other commands may be half-built)."""
    import argparse

    from posenet_mlvae.commands import evaluate

    assert argv[0] == "evaluate"
    parser = argparse.ArgumentParser(prog="posenet-mlvae evaluate")
    evaluate.add_arguments(parser)
    return evaluate.run(parser.parse_args(argv[1:]))


def test_cli_writes_metrics_diagnostics_and_report(tiny, tmp_path, capsys):
    root, _, checkpoint = tiny
    out = tmp_path / "eval"
    code = main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(root), "--split", "test",
                 "--out", str(out), "--diagnostics", "--report", "--device", "cpu", "--batch-size", "16",
                 "--no-progress"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("med_err_deg", "acc_pi_6", "acc_pi_18", "n", "per_category", "mean_over_categories"):
        assert key in metrics
    assert set(metrics["per_category"]) == {"car", "chair"} and metrics["n"] == 30
    diagnostics = metrics["diagnostics"]
    assert set(diagnostics["probes"]) == {"obs", "group"}
    assert diagnostics["retrieval"]["8"]["top1"] is not None and diagnostics["retrieval"]["8"]["n_instances"] == 3
    assert 0.0 <= diagnostics["grid_scores"]["factor_vae"]["eval_accuracy"] <= 1.0
    report = (out / "report.md").read_text()
    for name in ("swap_grid.png", "obs_latent_traversals.png", "worst_predictions.png"):
        assert (out / name).stat().st_size > 1000 and f"({name})" in report
    assert len((out / "predictions.csv").read_text().splitlines()) == 31
    assert "MedErr" in capsys.readouterr().out


def test_cli_compares_several_checkpoints(tiny, tmp_path, capsys):
    root, _, checkpoint = tiny
    code = main(["evaluate", "--checkpoint", str(checkpoint), str(checkpoint), "--data", str(root),
                 "--out", str(tmp_path), "--device", "cpu", "--report", "--no-progress"])
    assert code == 0
    assert (tmp_path / "comparison_cumulative_error.png").stat().st_size > 1000
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    assert len(comparison["runs"]) == 2
    first, second = comparison["runs"].values()
    assert first["med_err_deg"] == second["med_err_deg"]
    assert "Acc@pi/6 (%)" in capsys.readouterr().out


def test_cli_reports_a_bad_checkpoint(tiny, tmp_path, capsys):
    root, _, _ = tiny
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--checkpoint", str(bad), "--data", str(root), "--device", "cpu",
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    assert "not a readable checkpoint" in capsys.readouterr().out


def test_evaluate_is_registered_in_the_cli():
    from posenet_mlvae.cli import COMMANDS, HELP

    assert COMMANDS["evaluate"] == "posenet_mlvae.commands.evaluate" and "evaluate" in HELP


@pytest.mark.parametrize("variant", ["direct", "vae"])
def test_baseline_variants_are_evaluated_with_the_same_protocol(tiny, tmp_path, variant):
    from posenet_mlvae.evaluate import EvalConfig, evaluate_checkpoint

    root, _, _ = tiny
    torch.manual_seed(1)
    config = ModelConfig(variant=variant, width=8, obs_dim=4, content_dim=6, hidden_dim=32)
    checkpoint = save_checkpoint(tmp_path / "run" / "best.pt",
                                 {"model_config": to_dict(config), "model": build_model(config).state_dict()})
    metrics = evaluate_checkpoint(checkpoint, root, tmp_path / "eval",
                                  EvalConfig(diagnostics=True, report=True, progress=False))
    assert metrics["variant"] == variant and metrics["n"] == 30
    diagnostics = metrics["diagnostics"]
    has_content = variant != "direct"
    assert ("group" in diagnostics["probes"]) == has_content and ("retrieval" in diagnostics) == has_content
    assert (tmp_path / "eval" / "swap_grid.png").exists() == has_content
    assert (tmp_path / "eval" / "worst_predictions.png").stat().st_size > 1000


def test_grid_detection_rejects_a_grid_with_a_hole(tiny):
    root, _, _ = tiny
    dataset = GroupedDataset(root, split="test")
    dataset.records = {name: column[1:] for name, column in dataset.records.items()}
    assert not is_grid_set(dataset)


def test_runs_on_a_pascal3d_made_dataset(tiny, tmp_path):
    """Real-photo crops: groups of one or two views, two categories; retrieval says what it skips."""
    import pascal3d_fixture as fx
    from data_tools.pascal3d import index_dataset
    from data_tools.pascal3d_build import CropConfig, build_dataset
    from posenet_mlvae.evaluate import EvalConfig, evaluate_checkpoint

    _, _, checkpoint = tiny
    root = tmp_path / "PASCAL3D+_release1.1"
    fx.make_pascal3d_fixture(root)
    built = build_dataset(index_dataset(root, ["car", "chair"], workers=1), tmp_path / "ds",
                          CropConfig(size=64, flip=True, jitter=1), workers=1)
    metrics = evaluate_checkpoint(checkpoint, built.out, tmp_path / "eval",
                                  EvalConfig(diagnostics=True, report=True, progress=False))
    assert metrics["n"] == built.images["test"] and set(metrics["per_category"]) == {"car", "chair"}
    assert metrics["diagnostics"]["retrieval"]["8"]["top1"] is None
    assert "grid_scores" not in metrics["diagnostics"]
    assert (tmp_path / "eval" / "report.md").is_file()
