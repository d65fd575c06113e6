"""The evaluation runner (posenet_mlvae.evaluation.evaluate), driven through `posenet-mlvae evaluate` (cli.main)."""

import csv
import json

import numpy as np
import pytest
import torch

from data_tools.dataset import GroupedDataset, GroupedDatasetWriter
from data_tools.image.preprocess import to_model_input
from eval.confidence import confidence_summary
from eval.metrics import summarize, viewpoint_errors_deg
from posenet_mlvae.training.checkpoint import save_checkpoint
from posenet_mlvae.cli import main
from posenet_mlvae.config import ModelConfig, to_dict
from posenet_mlvae.evaluation.evaluate import Predictions, condition_metrics, is_grid_set, pose_metrics, predict
from posenet_mlvae.network.model import build_model

AZIMUTHS = (0.0, 72.0, 144.0, 216.0, 288.0)
ELEVATIONS = (0.0, 20.0)
DATA_RULE = {"mode": "pad", "margin": 0.1}
#: No test-time zooms, so that `_one_image_at_a_time` is a plain reference (zooms: test_model.py).
TINY = dict(width=8, obs_dim=4, content_dim=6, hidden_dim=32, zoom_average=0.0)


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
                                   "theta": 0.0, "distance": 4.0, "occluded": 0.3 * (a == 72.0),
                                   "truncated": int(a == 144.0 or (a == 72.0 and e == 0.0))})
    writer.close({"source": "synthetic", "seed": 0, "crop_rule": DATA_RULE})
    return root


def _checkpoint(path, seed: int, crop_rule=None, **config):
    torch.manual_seed(seed)
    model_config = ModelConfig(**{**TINY, **config})
    model = build_model(model_config).eval()
    extra = {} if crop_rule is None else {"crop_rule": crop_rule}
    save_checkpoint(path, {"model_config": to_dict(model_config), "model": model.state_dict(), "step": 7,
                           "metadata": {"image_size": 64, "categories": ["car", "chair"]}, **extra})
    return model, path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A grid dataset cropped by DATA_RULE; model A trained on the same rule, B on another one."""
    root = _write_dataset(tmp_path_factory.mktemp("data"))
    runs = tmp_path_factory.mktemp("runs")
    model_a, checkpoint_a = _checkpoint(runs / "runA" / "best.pt", 0, DATA_RULE)
    model_b, checkpoint_b = _checkpoint(runs / "runB" / "best.pt", 1, {"mode": "stretch", "margin": 0.0})
    return {"root": root, "model": model_a, "checkpoint": checkpoint_a, "model_b": model_b,
            "checkpoint_b": checkpoint_b}


def _evaluate(*args) -> int:
    return main(["evaluate", *map(str, args), "--device", "cpu", "--no-progress"])


def _one_image_at_a_time(model, root):
    """Reference: each test image alone (and its mirror, the model's mirror average) through
    encoder and pose head; errors and confidences."""
    dataset = GroupedDataset(root, split="test")
    errors, confidence = [], []
    with torch.no_grad():
        for i in range(len(dataset)):
            image = torch.from_numpy(to_model_input(dataset.images([i])))
            head = model.pose_head
            own, mirrored = (head(model.encode(x)[0]) for x in (image, torch.flip(image, dims=[3])))
            pose = head.decode(head.average_with_mirror(own, mirrored) if model.config.mirror_average else own)
            record = {k: dataset.records[k][i] for k in ("azimuth", "elevation", "theta")}
            errors.append(float(viewpoint_errors_deg(float(pose.azimuth), float(pose.elevation), float(pose.theta),
                                                     record["azimuth"], record["elevation"], record["theta"])))
            confidence.append(float(pose.confidence))
    return np.array(errors), np.array(confidence), dataset.records["category"].astype(str)


def test_metrics_on_a_hand_made_case():
    # errors: azimuth off by 0, 20, 40 and 180 deg at elevation 0 -> geodesic = the azimuth gap
    true = np.array([[10.0, 0, 0], [10.0, 0, 0], [10.0, 0, 0], [10.0, 0, 0], [np.nan] * 3])
    pred = np.array([[10.0, 0, 0], [30.0, 0, 0], [50.0, 0, 0], [190.0, 0, 0], [0.0, 0, 0]])
    predictions = Predictions(
        row=np.arange(5), group=np.arange(5), category=np.array(["car", "car", "bus", "bus", "bus"]),
        true=true, has_pose=np.array([True, True, True, True, False]), pred=pred,
        confidence=np.array([0.9, 0.8, 0.3, 0.2, 0.99]),
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
    # the two misses (40, 180 deg) have the lowest confidences; the unlabelled image is ignored
    assert metrics["confidence"]["auroc_err_gt_30"] == 1.0 and metrics["confidence"]["n_err_gt_30"] == 2
    half = next(r for r in metrics["confidence"]["risk_coverage"] if r["coverage"] == 0.5)
    assert half == pytest.approx({"coverage": 0.5, "n_kept": 2, "med_err_deg": 10.0, "acc_pi_6": 1.0})


def test_condition_metrics_split_clean_occluded_and_truncated_views_by_hand():
    # errors 0, 20, 40, 180, 10 deg (azimuth gaps at elevation 0); image 5 has no label
    true = np.array([[10.0, 0, 0]] * 5 + [[np.nan] * 3])
    pred = np.array([[10.0, 0, 0], [30.0, 0, 0], [50.0, 0, 0], [190.0, 0, 0], [20.0, 0, 0], [0.0, 0, 0]])
    predictions = Predictions(
        row=np.array([5, 4, 3, 2, 1, 0]), group=np.arange(6), category=np.array(["car"] * 6), true=true,
        has_pose=np.array([True] * 5 + [False]), pred=pred, confidence=np.ones(6),
        mu_obs=np.zeros((6, 2)), logvar_obs=np.zeros((6, 2)), mu_content=None, logvar_content=None)
    # records in dataset order: rows 5, 4 clean; 3 occluded; 2 truncated; 1 both; 0 (unlabelled) occluded
    records = {"occluded": np.array([0.5, 0.2, 0.0, 0.4, 0.0, 0.0]), "truncated": np.array([0, 1, 1, 0, 0, 0])}
    blocks = condition_metrics(predictions, records)
    assert list(blocks) == ["clean", "occluded", "truncated", "occluded+truncated"]
    assert blocks["clean"] == pytest.approx({"med_err_deg": 10.0, "acc_pi_6": 1.0, "acc_pi_18": 0.5, "n": 2})
    assert blocks["occluded"]["n"] == 1 and blocks["occluded"]["med_err_deg"] == pytest.approx(40.0)
    assert blocks["truncated"]["med_err_deg"] == pytest.approx(180.0)
    assert blocks["occluded+truncated"]["med_err_deg"] == pytest.approx(10.0)
    assert condition_metrics(predictions, {"occluded": records["occluded"]}) == {}  # an image folder
    assert condition_metrics(predictions, {**records, "truncated": np.array(["yes"] * 6, object)}) == {}
    # renders record each view's shrink: row 4 (clean, error 20) drawn small, and row 1 (both, shrunk
    # too) stays occluded+truncated
    small = condition_metrics(predictions, {**records, "shrink": np.array([1.0, 2.5, 1.0, 1.0, 3.0, 1.0])})
    assert list(small) == ["clean", "small", "occluded", "truncated", "occluded+truncated"]
    assert small["clean"]["n"] == 1 and small["clean"]["med_err_deg"] == pytest.approx(0.0)
    assert small["small"]["n"] == 1 and small["small"]["med_err_deg"] == pytest.approx(20.0)
    assert small["occluded+truncated"]["n"] == 1


def test_two_batches_give_the_pooled_result(tiny):
    model, dataset = tiny["model"], GroupedDataset(tiny["root"], split="test")
    rows = np.arange(len(dataset))
    pooled = predict(model, dataset, batch_size=10)
    halves = Predictions.concat([predict(model, dataset, rows[:20], batch_size=10),
                                 predict(model, dataset, rows[20:], batch_size=10)])
    assert pose_metrics(halves) == pose_metrics(pooled)
    assert np.array_equal(halves.mu_content, pooled.mu_content) and np.array_equal(halves.pred, pooled.pred)
    assert len(pooled) == 30 and pose_metrics(pooled)["n"] == 30


def test_latents_without_the_pose_are_the_same_latents(tiny):
    """The probes' latents skip the pose's test-time views (with_pose=False): same latents, no pose."""
    import copy

    from posenet_mlvae.inference import set_zoom_average

    model = set_zoom_average(copy.deepcopy(tiny["model"]), 0.1)
    dataset = GroupedDataset(tiny["root"], split="train")
    full, latents = predict(model, dataset), predict(model, dataset, with_pose=False)
    for name in ("mu_obs", "logvar_obs", "mu_content", "logvar_content"):
        np.testing.assert_array_equal(getattr(latents, name), getattr(full, name))
    assert np.isnan(latents.pred).all() and np.isnan(latents.confidence).all()
    assert np.isfinite(full.pred).all()


def test_cli_over_several_batches_equals_a_hand_run_of_each_image(tiny, tmp_path, capsys):
    """30 images in batches of 7 (the last holds 2): every batch counts, none twice."""
    out = tmp_path / "eval"
    assert _evaluate("--checkpoint", tiny["checkpoint"], "--data", tiny["root"], "--out", out,
                     "--batch-size", "7") == 0
    errors, confidence, categories = _one_image_at_a_time(tiny["model"], tiny["root"])
    metrics = json.loads((out / "metrics.json").read_text())
    reference = summarize(errors, categories)
    assert metrics["n"] == 30 and set(metrics["per_category"]) == {"car", "chair"}
    for key in ("med_err_deg", "acc_pi_6", "acc_pi_18"):
        assert metrics[key] == pytest.approx(reference[key], abs=1e-3), key
        assert metrics["per_category"]["car"][key] == pytest.approx(reference["per_category"]["car"][key], abs=1e-3)
    expected = confidence_summary(errors, confidence)
    assert metrics["confidence"]["auroc_err_gt_30"] == pytest.approx(expected["auroc_err_gt_30"], abs=1e-6)
    for got, want in zip(metrics["confidence"]["risk_coverage"], expected["risk_coverage"], strict=True):
        assert got == pytest.approx(want, abs=1e-3)
    # Views by condition (the fixture occludes azimuth 72, truncates 144 and 72 at elevation 0).
    test_records = GroupedDataset(tiny["root"], split="test").records
    azimuth, elevation = test_records["azimuth"], test_records["elevation"]
    by_hand = np.where(azimuth == 72.0, np.where(elevation == 0.0, "occluded+truncated", "occluded"),
                       np.where(azimuth == 144.0, "truncated", "clean"))
    assert list(metrics["per_condition"]) == ["clean", "occluded", "truncated", "occluded+truncated"]
    for condition, block in metrics["per_condition"].items():
        assert block["n"] == (by_hand == condition).sum()
        assert block["med_err_deg"] == pytest.approx(np.median(errors[by_hand == condition]), abs=1e-3)
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    np.testing.assert_allclose([float(r["error_deg"]) for r in rows], errors, atol=1e-3)
    np.testing.assert_allclose([float(r["confidence"]) for r in rows], confidence, atol=1e-4)
    printed = capsys.readouterr().out
    assert f"{metrics['med_err_deg']:.2f}" in printed and "confidence: AUROC for error > 30 deg" in printed


def test_cli_writes_diagnostics_and_report(tiny, tmp_path):
    out = tmp_path / "eval"
    assert _evaluate("--checkpoint", tiny["checkpoint"], "--data", tiny["root"], "--out", out,
                     "--diagnostics", "--report", "--batch-size", "16") == 0
    diagnostics = json.loads((out / "metrics.json").read_text())["diagnostics"]
    assert set(diagnostics["probes"]) == {"obs", "group"}
    assert diagnostics["retrieval"]["8"]["n_instances"] == 3  # test groups 5, 6, 7
    # An enrolled gallery takes k views more: 10 views per instance allow k = 4, not 8.
    assert diagnostics["retrieval_enrolled"]["4"]["gallery_views"] == 4
    assert diagnostics["retrieval_enrolled"]["8"]["top1"] is None
    assert 0.0 <= diagnostics["grid_scores"]["factor_vae"]["eval_accuracy"] <= 1.0
    report = (out / "report.md").read_text()
    assert "gallery enrolled from k views" in report
    for name in ("swap_grid.png", "obs_latent_traversals.png", "worst_predictions.png", "risk_coverage.png"):
        assert (out / name).is_file() and f"({name})" in report
    assert "## Confidence" in report and "| clean views | 18 |" in report


def test_cli_compares_two_different_checkpoints(tiny, tmp_path, capsys):
    data, out = tiny["root"], tmp_path / "both"
    assert _evaluate("--checkpoint", tiny["checkpoint"], tiny["checkpoint_b"], "--data", data, "--out", out) == 0
    runs = json.loads((out / "comparison.json").read_text())["runs"]
    assert list(runs) == ["runA", "runB"]
    # each column is that checkpoint's own result (its model run in this process), not the other's
    reference = {name: np.median(predict(tiny[key], GroupedDataset(data, split="test")).errors_deg())
                 for name, key in (("runA", "model"), ("runB", "model_b"))}
    assert abs(reference["runA"] - reference["runB"]) > 0.1  # two different models
    for name in runs:
        assert runs[name]["med_err_deg"] == pytest.approx(reference[name], abs=1e-3)
        assert json.loads((out / name / "metrics.json").read_text()) == runs[name]
    printed = capsys.readouterr().out.splitlines()
    med_err = [line for line in printed if line.startswith("MedErr (deg)")]
    assert len(med_err) == 1 and med_err[0].split()[2:] == [f"{runs[name]['med_err_deg']:.2f}" for name in runs]


def test_crop_rule_mismatch_prints_one_note(tiny, tmp_path, capsys):
    data = tiny["root"]
    assert _evaluate("--checkpoint", tiny["checkpoint_b"], "--data", data, "--out", tmp_path / "b") == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {data} was cropped with pad with margin 0.1 but the model was trained on "
                     "stretch with margin 0; scores may suffer"]
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["crop_rule"]["note"] == notes[0][6:]
    assert _evaluate("--checkpoint", tiny["checkpoint"], "--data", data, "--out", tmp_path / "a") == 0
    assert "note:" not in capsys.readouterr().out  # same rule
    _, unknown = _checkpoint(tmp_path / "old" / "best.pt", 0)  # made before rules were recorded
    assert _evaluate("--checkpoint", unknown, "--data", data, "--out", tmp_path / "old-eval") == 0
    assert "note:" not in capsys.readouterr().out
    assert json.loads((tmp_path / "old-eval" / "metrics.json").read_text())["crop_rule"] == {
        "data": DATA_RULE, "model": None, "note": None}


def test_cli_reports_a_bad_checkpoint(tiny, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert _evaluate("--checkpoint", bad, "--data", tiny["root"], "--out", tmp_path / "o") == 1
    assert "not a readable checkpoint" in capsys.readouterr().out


@pytest.mark.parametrize("variant", ["direct", "vae"])
def test_baseline_variants_are_evaluated_with_the_same_protocol(tiny, tmp_path, variant):
    model, checkpoint = _checkpoint(tmp_path / "run" / "best.pt", 1, variant=variant)
    out = tmp_path / "eval"
    assert _evaluate("--checkpoint", checkpoint, "--data", tiny["root"], "--out", out, "--diagnostics",
                     "--report") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    errors = predict(model, GroupedDataset(tiny["root"], split="test")).errors_deg()
    assert metrics["variant"] == variant and metrics["med_err_deg"] == pytest.approx(np.median(errors), abs=1e-3)
    diagnostics = metrics["diagnostics"]
    has_content = variant != "direct"
    assert ("group" in diagnostics["probes"]) == has_content and ("retrieval" in diagnostics) == has_content
    assert (out / "swap_grid.png").exists() == has_content
    assert (out / "worst_predictions.png").is_file()


@pytest.mark.parametrize("zoom", [0.0, 0.1])
def test_one_decode_for_evaluation_validation_and_export(tiny, zoom):
    """The runner, validation during training and the ONNX module read the same pose, with and
    without test-time zoom averaging."""
    import copy

    from posenet_mlvae.training.data import load_split
    from posenet_mlvae.inference import PoseInference, set_zoom_average
    from posenet_mlvae.training.validation import validate

    model, root = set_zoom_average(copy.deepcopy(tiny["model"]), zoom), tiny["root"]
    dataset = GroupedDataset(root, split="test")
    predictions = predict(model, dataset, batch_size=64)
    with torch.no_grad():
        azimuth, elevation, theta, _, confidence = PoseInference(model)(
            torch.from_numpy(to_model_input(dataset.images(np.arange(len(dataset))))))[:5]
    np.testing.assert_allclose(np.stack([azimuth, elevation, theta], 1), predictions.pred, atol=1e-4)
    np.testing.assert_allclose(confidence.numpy(), predictions.confidence, atol=1e-6)
    split = load_split([str(root)], "test", 64, hflip=False)
    scores = validate(model, split, torch.device("cpu"), {}, max_images=len(dataset))
    assert scores["n"] == len(dataset)
    errors = predictions.errors_deg()
    assert scores["med_err_deg"] == pytest.approx(np.median(errors), abs=1e-3)
    assert scores["acc_pi_6"] == pytest.approx(np.mean(errors <= 30.0))


def test_cli_zoom_average_overrides_the_checkpoint_and_is_recorded(tiny, tmp_path, capsys):
    import copy

    from posenet_mlvae.inference import set_zoom_average

    dataset = GroupedDataset(tiny["root"], split="test")
    for zoom, flags in ((0.0, []), (0.15, ["--zoom-average", "0.15"])):
        out = tmp_path / f"eval-{zoom}"
        assert _evaluate("--checkpoint", tiny["checkpoint"], "--data", tiny["root"], "--out", out, *flags) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        expected = predict(set_zoom_average(copy.deepcopy(tiny["model"]), zoom), dataset)
        assert metrics["zoom_average"] == zoom
        assert metrics["med_err_deg"] == pytest.approx(pose_metrics(expected)["med_err_deg"], abs=1e-3)
        assert ("zoom average 0.15" in capsys.readouterr().out) == (zoom > 0)
    zoomed = json.loads((tmp_path / "eval-0.15" / "metrics.json").read_text())
    plain = json.loads((tmp_path / "eval-0.0" / "metrics.json").read_text())
    assert zoomed["confidence"] != plain["confidence"]  # the flag reached the model


def test_grid_set_is_detected(tiny):
    assert is_grid_set(GroupedDataset(tiny["root"], split="test"))


def test_grid_detection_rejects_a_grid_with_a_hole(tiny):
    dataset = GroupedDataset(tiny["root"], split="test")
    dataset.records = {name: column[1:] for name, column in dataset.records.items()}
    assert not is_grid_set(dataset)


def test_runs_on_a_pascal3d_made_dataset(tiny, tmp_path, capsys):
    """Real-photo crops made by `posenet-mlvae pascal3d`: groups of one or two views, two categories."""
    from data_tools.pascal3d import miniature as fx

    root = tmp_path / "PASCAL3D+_release1.1"
    fx.make_pascal3d_fixture(root)
    data = tmp_path / "ds"
    assert main(["pascal3d", "--root", str(root), "--category", "car", "--category", "chair", "--out", str(data),
                 "--flip", "--jitter", "1", "--workers", "1", "--no-progress"]) == 0
    test_images = len(GroupedDataset(data, split="test"))
    assert _evaluate("--checkpoint", tiny["checkpoint"], "--data", data, "--out", tmp_path / "eval",
                     "--diagnostics") == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n"] == test_images and set(metrics["per_category"]) == {"car", "chair"}
    assert metrics["diagnostics"]["retrieval"]["8"]["top1"] is None
    assert "grid_scores" not in metrics["diagnostics"]
    # crops made by `pascal3d` record their rule, and the runner reports it
    assert metrics["crop_rule"]["data"] == json.loads((data / "manifest.json").read_text())["crop_rule"]
