"""`posenet-mlvae bench sim2real` on the miniature PASCAL3D+ tree, against hand-computed figures.

The checkpoints predict one fixed viewpoint for every image (pose head weights zeroed, biases
set), so each object's error follows from the fixture's ground truth alone. For the AUROC the
azimuth logits get an input-dependent part, centred and scaled on the test crops, that spreads
the confidences without moving the argmax bin.
"""

import csv
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from data_tools.image.preprocess import to_model_input
from data_tools.pascal3d import miniature as fx
from eval.metrics import viewpoint_errors_deg
from posenet_mlvae.training.checkpoint import save_checkpoint
from posenet_mlvae.cli import main
from posenet_mlvae.config import ModelConfig, to_dict
from posenet_mlvae.network.model import build_model

#: The car objects of the fixture's standard test set (see data_tools/pascal3d/miniature.py): v1, v2's
#: clean car, v6's car with a box and the car of the shared image.
TEST_CARS = (("2008_000001", 0), ("2008_000002", 0), ("2008_000006", 0), ("2008_000050", 0))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("pascal3d") / "PASCAL3D+_release1.1"
    truth = fx.make_pascal3d_fixture(root)
    poses = [truth[("car", "pascal", vid, i)]["pose"] for vid, i in TEST_CARS]
    cads = np.array([truth[("car", "pascal", vid, i)]["cad"] for vid, i in TEST_CARS])
    return root, np.array([[p.azimuth, p.elevation, p.theta] for p in poses]), cads


def _fixed_pose_checkpoint(path, azimuth: float, elevation: float, theta: float, crop_rule=None,
                           spread_on=None):
    """A tiny model whose pose head outputs (azimuth, elevation, theta) for any image.

    spread_on: uint8 (N, H, W, 3) images on which the confidences should differ (logit noise of
    std ~0.4 around a 3.0 lead of the chosen bin); None gives every image the same confidence.
    """
    torch.manual_seed(0)
    # No mirror averaging: it would average the fixed pose with its mirror image's (360 - a).
    config = ModelConfig(width=8, obs_dim=4, content_dim=6, hidden_dim=32, mirror_average=False)
    model = build_model(config).eval()
    head = model.pose_head
    bin_index = int(azimuth // head.bin_width)
    with torch.no_grad():
        lead = torch.zeros(head.bins)
        lead[bin_index] = 3.0
        if spread_on is None:
            head.azimuth_logits.weight.zero_()
            head.azimuth_logits.bias.copy_(lead)
        else:
            hidden = head.mlp(model.encode(torch.from_numpy(to_model_input(spread_on)))[0])  # (N, hidden)
            varying = head.azimuth_logits.weight @ (hidden - hidden.mean(0)).T  # (bins, N)
            scale = 0.4 / float(varying.std())
            head.azimuth_logits.weight.mul_(scale)
            head.azimuth_logits.bias.copy_(lead - head.azimuth_logits.weight @ hidden.mean(0))
        head.azimuth_offset.weight.zero_()
        head.azimuth_offset.bias.fill_(azimuth / head.bin_width - bin_index)
        head.angles.weight.zero_()
        head.angles.bias.zero_()
        head.angle_mean.copy_(torch.tensor([elevation, theta]))
    extra = {} if crop_rule is None else {"crop_rule": crop_rule}
    save_checkpoint(path, {"model_config": to_dict(config), "model": model.state_dict(), "step": 3,
                           "metadata": {"image_size": 64, "categories": ["car"]}, **extra})
    return path


def _bench(root, checkpoint, out, *extra) -> int:
    return main(["bench", "sim2real", "--root", str(root), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--workers", "1", "--device", "cpu", "--no-progress", *extra])


def _fixed_pose_bench(root, tmp_path, capsys, *extra) -> tuple[dict, str]:
    """Run the bench with `extra` options on a model answering (350, 15, 0) everywhere: the
    sim2real.json it wrote and what it printed."""
    checkpoint = _fixed_pose_checkpoint(tmp_path / "run" / "best.pt", 350.0, 15.0, 0.0)
    assert _bench(root, checkpoint, tmp_path / "out", *extra) == 0
    printed = capsys.readouterr().out
    return json.loads((tmp_path / "out" / "eval-run" / "sim2real.json").read_text()), printed


def _predictions(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) for r in rows])
            for key in ("azimuth", "pred_azimuth", "pred_elevation", "error_deg", "confidence")}


def test_flips_and_gross_errors_match_the_ground_truth(tree, tmp_path, capsys):
    root, true, cads = tree
    predicted = (350.0, 15.0, 0.0)
    checkpoint = _fixed_pose_checkpoint(tmp_path / "run" / "best.pt", *predicted)
    assert _bench(root, checkpoint, tmp_path / "out") == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "eval-run" / "sim2real.json").read_text())
    predictions = _predictions(tmp_path / "out" / "eval-run" / "predictions.csv")
    np.testing.assert_allclose(predictions["pred_azimuth"], 350.0, atol=1e-3)  # the model is what we built
    np.testing.assert_allclose(predictions["pred_elevation"], 15.0, atol=1e-3)

    errors = viewpoint_errors_deg(*np.repeat([predicted], len(true), 0).T, *true.T)  # from the fixture alone
    flips, gross = int((errors > 150).sum()), int(((errors > 60) & (errors <= 150)).sum())
    assert (flips, gross) == (2, 1)  # the case is built to have both: v6 and the shared car are flipped
    assert result["n"] == len(TEST_CARS) and (result["flips"], result["errors_60_150"]) == (flips, gross)
    assert result["flips"] == int((predictions["error_deg"] > 150).sum())
    assert result["med_err_deg"] == pytest.approx(np.median(errors), abs=1e-3)
    assert result["acc_pi_6"] == np.mean(errors <= 30) and result["acc_pi_18"] == np.mean(errors <= 10)
    assert result["auroc_err_gt_30"] is None  # every image is a miss: undefined
    bins = np.floor(true[:, 0] / 45.0).astype(int)
    for k, row in enumerate(result["per_azimuth"]):
        assert (row["azimuth_from"], row["azimuth_to"]) == (45.0 * k, 45.0 * (k + 1))
        assert row["n"] == int((bins == k).sum()) and row["flips"] == int((errors[bins == k] > 150).sum())
        if row["n"]:
            assert row["med_err_deg"] == pytest.approx(np.median(errors[bins == k]), abs=1e-3)
    assert [row["cad_index"] for row in result["per_cad_model"]] == sorted(set(cads.tolist()))  # 1, 2, 3
    for row in result["per_cad_model"]:
        mine = errors[cads == row["cad_index"]]
        assert row["n"] == mine.size and row["flips"] == int((mine > 150).sum())
        assert row["med_err_deg"] == pytest.approx(np.median(mine), abs=1e-3)
    assert "CAD model" in printed
    assert f"flips (error > 150 deg) {flips}  errors in (60, 150] deg {gross}" in printed
    assert f"n {len(TEST_CARS)}  MedErr {np.median(errors):.2f} deg" in printed
    assert "[135, 180)         2" in printed and "confidence AUROC for error > 30 deg -" in printed


def test_auroc_matches_sklearn_on_the_predictions(tree, tmp_path, capsys):
    from data_tools.dataset import GroupedDataset
    from data_tools.pascal3d.protocol import index_dataset
    from data_tools.pascal3d.build import CropConfig, build_dataset

    root, true, _ = tree
    predicted = (165.0, 15.0, 3.0)
    crops = build_dataset(index_dataset(root, ["car"], workers=1), tmp_path / "crops", CropConfig(size=64)).out
    test_crops = GroupedDataset(crops, split="test")
    checkpoint = _fixed_pose_checkpoint(tmp_path / "run" / "best.pt", *predicted,
                                        spread_on=test_crops.images(np.arange(len(test_crops))))
    assert _bench(root, checkpoint, tmp_path / "out") == 0
    result = json.loads((tmp_path / "out" / "eval-run" / "sim2real.json").read_text())
    predictions = _predictions(tmp_path / "out" / "eval-run" / "predictions.csv")
    np.testing.assert_allclose(predictions["pred_azimuth"], 165.0, atol=1e-3)  # the argmax never moved
    assert len(np.unique(predictions["confidence"])) == len(TEST_CARS)  # distinct: a real ranking
    # pair each row with its fixture object by the true azimuth, then score by hand
    order = [int(np.argmin(np.abs(true[:, 0] - a))) for a in predictions["azimuth"]]
    errors = viewpoint_errors_deg(*np.repeat([predicted], len(true), 0).T, *true[order].T)
    np.testing.assert_allclose(predictions["error_deg"], errors, atol=1e-3)
    misses = errors > 30
    assert 0 < misses.sum() < len(misses)  # hits and misses: the AUROC is defined
    assert result["auroc_err_gt_30"] == pytest.approx(roc_auc_score(misses, -predictions["confidence"]))
    metrics = json.loads((tmp_path / "out" / "eval-run" / "metrics.json").read_text())
    assert metrics["confidence"]["auroc_err_gt_30"] == result["auroc_err_gt_30"]  # one computation
    assert result["flips"] == 0 and result["acc_pi_6"] == pytest.approx(np.mean(~misses))
    assert f"confidence AUROC for error > 30 deg {result['auroc_err_gt_30']:.3f}" in capsys.readouterr().out


def test_crops_follow_the_checkpoint_rule_and_are_reused(tree, tmp_path, capsys):
    from data_tools.pascal3d.build import CropConfig

    root, _, _ = tree
    out = tmp_path / "out"
    stretch = _fixed_pose_checkpoint(tmp_path / "stretch" / "best.pt", 10.0, 5.0, 0.0,
                                     crop_rule={"mode": "stretch", "margin": 0.2})
    assert _bench(root, stretch, out) == 0
    data = out / "data-car-64px-stretch-margin0.2"
    manifest = json.loads((data / "manifest.json").read_text())
    assert (manifest["crop"]["resize"], manifest["crop"]["margin"], manifest["crop"]["size"]) == ("stretch", 0.2, 64)
    assert manifest["root"] == str(root.resolve())
    assert capsys.readouterr().out.startswith(f"cropped {data} (car, 64 px, stretch with margin 0.2)")
    stamp = (data / "manifest.json").stat().st_mtime_ns
    assert _bench(root, stretch, out) == 0
    assert capsys.readouterr().out.startswith(f"reusing {data}")
    assert (data / "manifest.json").stat().st_mtime_ns == stamp
    old = _fixed_pose_checkpoint(tmp_path / "old" / "best.pt", 10.0, 5.0, 0.0)  # no rule recorded
    assert _bench(root, old, out) == 0
    default = CropConfig()
    assert (out / f"data-car-64px-{default.resize}-margin{default.margin:g}" / "manifest.json").is_file()
    assert not list(out.glob(".*tmp*"))  # no half-built folder left behind


def test_size_must_match_the_checkpoint(tree, tmp_path, capsys):
    root, _, _ = tree
    checkpoint = _fixed_pose_checkpoint(tmp_path / "run" / "best.pt", 10.0, 5.0, 0.0)
    assert _bench(root, checkpoint, tmp_path / "out", "--size", "128") == 2
    assert "--size 128 does not match the checkpoint's input size 64" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing cropped for a wrong size


def test_colour_tests_score_changed_crops(tree, tmp_path, capsys):
    from data_tools.dataset import GroupedDataset
    from data_tools.image.colour_tests import COLOUR_TESTS, to_grey
    from posenet_mlvae.evaluation.evaluate import predict
    from posenet_mlvae.training.checkpoint import load_checkpoint

    root, _, _ = tree
    checkpoint = _fixed_pose_checkpoint(tmp_path / "run" / "best.pt", 350.0, 15.0, 0.0)
    assert _bench(root, checkpoint, tmp_path / "out", "--colour-test") == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "eval-run" / "sim2real.json").read_text())
    assert list(result["colour_tests"]) == list(COLOUR_TESTS)
    for name, changed in result["colour_tests"].items():
        # this model answers one pose whatever the pixels: colour cannot move its figures
        assert (changed["n"], changed["flips"], changed["errors_60_150"]) == (
            result["n"], result["flips"], result["errors_60_150"])
        assert changed["med_err_deg"] == pytest.approx(result["med_err_deg"], abs=1e-3)
        assert f"colour test {name}: MedErr {changed['med_err_deg']:.2f} deg" in printed
    assert printed.index("colour test grey") < printed.index("true azimuth")

    # ...and the images the model sees are the changed ones: its latents follow the pixels
    crops = GroupedDataset(result["dataset"], split="test")
    model, _ = load_checkpoint(checkpoint)
    seen = []
    as_grey = predict(model, crops, transform=lambda images: seen.append(images) or to_grey(images))
    plain = predict(model, crops)
    assert sum(len(images) for images in seen) == len(crops)
    assert not np.allclose(as_grey.mu_obs, plain.mu_obs)
    grey_crops = to_grey(crops.images(np.arange(len(crops))))
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(to_model_input(grey_crops)))[0].double().numpy()
    np.testing.assert_allclose(as_grey.mu_obs, expected, rtol=1e-5, atol=1e-5)


def test_smaller_objects_score_the_crops_shrunk_and_upscaled(tree, tmp_path, capsys):
    from data_tools.dataset import GroupedDataset
    from data_tools.image.resolution import as_if_smaller
    from posenet_mlvae.evaluation.sim2real import resolution_changes

    result, printed = _fixed_pose_bench(tree[0], tmp_path, capsys, "--smaller-objects", "2", "3.5")
    assert list(result["smaller_objects"]) == ["2", "3.5"]
    for factor, changed in result["smaller_objects"].items():
        # one pose whatever the pixels: the figures stay the plain crops'
        assert (changed["n"], changed["flips"]) == (result["n"], result["flips"])
        assert changed["med_err_deg"] == pytest.approx(result["med_err_deg"], abs=1e-3)
        assert f"objects {factor}x smaller: MedErr {changed['med_err_deg']:.2f} deg" in printed
    assert "colour_tests" not in result

    # the change the model sees is as_if_smaller at each factor, and it does change the crops
    crops = GroupedDataset(result["dataset"], split="test").images(np.arange(4))
    changes = resolution_changes([2.0, 3.5])
    for name, factor in (("2", 2.0), ("3.5", 3.5)):
        np.testing.assert_array_equal(changes[name](crops), as_if_smaller(crops, factor))
        assert not np.array_equal(changes[name](crops), crops)


def test_box_noise_scores_the_objects_cut_around_noisy_boxes(tree, tmp_path, capsys):
    from data_tools.dataset import GroupedDataset, read_manifest

    result, printed = _fixed_pose_bench(tree[0], tmp_path, capsys, "--box-noise", "0.05", "0.2")
    assert list(result["noisy_boxes"]) == ["0.05", "0.2"]
    plain = GroupedDataset(result["dataset"], split="test")
    assert len(GroupedDataset(result["dataset"])) > len(plain)  # the plain set holds training crops too
    for noise, changed in result["noisy_boxes"].items():
        folder = tmp_path / "out" / f"data-car-64px-pad-margin0.1-boxnoise{noise}"
        assert read_manifest(folder)["crop"]["box_noise"] == float(noise)
        noisy = GroupedDataset(folder, split="test")
        assert len(GroupedDataset(folder)) == len(noisy)  # only the test objects were cut again
        np.testing.assert_array_equal(noisy.records["azimuth"], plain.records["azimuth"])
        assert not np.array_equal(noisy.images(np.arange(len(noisy))), plain.images(np.arange(len(plain))))
        assert changed["median_box_iou"] == pytest.approx(float(np.median(noisy.records["box_iou"])))
        # one pose whatever the pixels: the figures stay the plain crops'
        assert (changed["n"], changed["flips"]) == (result["n"], result["flips"])
        assert changed["med_err_deg"] == pytest.approx(result["med_err_deg"], abs=1e-3)
        assert (f"boxes with noise {noise} (median IoU {changed['median_box_iou']:.2f}): "
                f"MedErr {changed['med_err_deg']:.2f} deg") in printed
    # more noise, looser boxes
    assert 0.3 < result["noisy_boxes"]["0.2"]["median_box_iou"] < result["noisy_boxes"]["0.05"]["median_box_iou"] < 1.0


def test_box_draws_cut_the_boxes_anew_per_draw_and_average_the_figures(tree, tmp_path, capsys):
    from data_tools.dataset import GroupedDataset, read_manifest

    result, printed = _fixed_pose_bench(tree[0], tmp_path, capsys, "--box-noise", "0.1", "--box-draws", "3")
    changed = result["noisy_boxes"]["0.1"]
    assert len(changed["draws"]) == 3
    folders = [tmp_path / "out" / f"data-car-64px-pad-margin0.1-boxnoise0.1{suffix}"
               for suffix in ("", "-draw1", "-draw2")]  # draw 0 is the single draw's cache
    sets = [GroupedDataset(folder, split="test") for folder in folders]
    assert [read_manifest(folder)["seed"] for folder in folders] == [0, 1, 2]
    ious = [crops.records["box_iou"] for crops in sets]
    assert not np.array_equal(ious[0], ious[1]) and not np.array_equal(ious[1], ious[2])  # boxes moved anew
    for draw, iou in zip(changed["draws"], ious):
        assert draw["median_box_iou"] == pytest.approx(float(np.median(iou)))
    assert changed["median_box_iou"] == pytest.approx(np.mean([float(np.median(iou)) for iou in ious]))
    assert changed["range"]["median_box_iou"] == pytest.approx([min(map(np.median, ious)), max(map(np.median, ious))])
    assert "boxes with noise 0.1, mean of 3 draws (median IoU" in printed


def test_the_tree_is_indexed_once_for_all_its_crops_and_not_at_all_when_they_are_cached(tree, tmp_path, capsys,
                                                                                        monkeypatch):
    from data_tools.pascal3d import protocol

    calls = []
    index_dataset = protocol.index_dataset
    monkeypatch.setattr(protocol, "index_dataset", lambda *args, **kwargs: calls.append(args) or
                        index_dataset(*args, **kwargs))
    _fixed_pose_bench(tree[0], tmp_path, capsys, "--box-noise", "0.05", "0.1", "--box-draws", "2")
    assert len(calls) == 1  # the plain crops and four noisy sets from one index
    _fixed_pose_bench(tree[0], tmp_path, capsys, "--box-noise", "0.05", "0.1", "--box-draws", "2")
    assert len(calls) == 1  # all five reused from the cache


def test_a_cached_crop_made_another_way_is_refused_in_one_line(tree, tmp_path, capsys):
    _fixed_pose_bench(tree[0], tmp_path, capsys, "--box-noise", "0.1")
    folder = tmp_path / "out" / "data-car-64px-pad-margin0.1-boxnoise0.1"
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["crop"]["seed"] = 5  # as if another draw had been cached under draw 0's name
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert _bench(tree[0], tmp_path / "run" / "best.pt", tmp_path / "out", "--box-noise", "0.1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{folder} holds crops of" in err and "box noise 0.1, seed 5), not of" in err
    assert "box noise 0.1, seed 0); use another --out" in err


def test_draws_summary_averages_each_figure_and_keeps_its_range():
    from posenet_mlvae.evaluation.sim2real import draws_summary

    draws = [{"n": 10, "med_err_deg": 6.0, "acc_pi_6": 0.9, "acc_pi_18": 0.7, "flips": 2, "errors_60_150": 1,
              "auroc_err_gt_30": None, "median_box_iou": 0.8},
             {"n": 10, "med_err_deg": 9.0, "acc_pi_6": 0.8, "acc_pi_18": 0.5, "flips": 5, "errors_60_150": 0,
              "auroc_err_gt_30": 0.7, "median_box_iou": 0.7}]
    summary = draws_summary(draws)
    assert summary["n"] == 10 and summary["med_err_deg"] == 7.5 and summary["flips"] == 3.5
    assert summary["acc_pi_6"] == pytest.approx(0.85) and summary["median_box_iou"] == pytest.approx(0.75)
    assert summary["auroc_err_gt_30"] == 0.7  # the mean over the draws that have one
    assert summary["range"]["med_err_deg"] == [6.0, 9.0] and summary["range"]["flips"] == [2.0, 5.0]
    assert summary["draws"] == draws


@pytest.mark.parametrize("option, message", [
    (["--smaller-objects", "2", "0.5"], "--smaller-objects takes factors > 1"),
    (["--box-noise", "0.1", "--box-draws", "0"], "--box-draws takes a count of draws >= 1"),
    (["--box-noise", "0.1", "0"], "--box-noise takes standard deviations in (0, 0.3]"),
    (["--box-noise", "0.5"], "--box-noise takes standard deviations in (0, 0.3]"),
])
def test_bad_changes_are_refused_before_any_work(tree, tmp_path, capsys, option, message):
    root, _, _ = tree
    checkpoint = _fixed_pose_checkpoint(tmp_path / "run" / "best.pt", 350.0, 15.0, 0.0)
    assert _bench(root, checkpoint, tmp_path / "out", *option) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything was cropped or scored
