"""Group inference in apps: PoseEstimator.predict_group and `predict --group` (ONNX Runtime, numpy)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from data_tools.gaussians import product_of_gaussians
from pose_model_fixture import exported_pose_model

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return exported_pose_model(tmp_path_factory)


@pytest.fixture(scope="module")
def estimator(exported):
    from export.runtime import PoseEstimator

    return PoseEstimator(exported / "model.onnx", providers=["CPUExecutionProvider"])


def views(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, 1, 3))
    return [np.clip(base + rng.integers(-60, 60, (64, 64, 3)), 0, 255).astype(np.uint8) for _ in range(count)]


def test_product_of_gaussians_matches_the_normalised_product_of_densities():
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    mean, group_logvar = product_of_gaussians(mu, logvar)
    x = rng.normal(size=(5, 2))
    # log prod_i N(x; mu_i, var_i) = log N(x; mean, var) + a constant independent of x
    product = sum(multivariate_normal(mu[i], np.diag(np.exp(logvar[i]))).logpdf(x) for i in range(3))
    single = multivariate_normal(mean, np.diag(np.exp(group_logvar))).logpdf(x)
    np.testing.assert_allclose(product - single, (product - single)[0], atol=1e-9)
    np.testing.assert_allclose(1 / np.exp(group_logvar), (1 / np.exp(logvar)).sum(0))
    extreme = product_of_gaussians(np.array([[1.0], [5.0]]), np.array([[-800.0], [800.0]]))  # no overflow
    assert extreme[0][0] == pytest.approx(1.0) and np.isfinite(extreme[1]).all()


def test_predict_group_equals_the_torch_models_group_product(exported, estimator):
    from posenet_mlvae.training.checkpoint import load_checkpoint

    images = views(5)
    group = estimator.predict_group(images)
    batch, _ = estimator.preprocess(images)
    model, _ = load_checkpoint(exported / "best.pt", map_location="cpu")
    images_and_mirrors = torch.from_numpy(np.concatenate([batch, batch[..., ::-1]]))  # a symmetric car's mirror is a view too
    with torch.no_grad():
        output = model.eval()(images_and_mirrors, torch.zeros(10, dtype=torch.int64))
    np.testing.assert_allclose(group.content_mean, output.mu_group[0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(group.content_logvar, output.logvar_group[0].numpy(), rtol=1e-4, atol=1e-5)
    singles = estimator.predict(images)
    assert [p.azimuth for p in group.poses] == pytest.approx([p.azimuth for p in singles], abs=1e-4)
    assert json.loads(json.dumps(group.to_dict()))["content_mean"] == pytest.approx(group.content_mean.tolist())


def test_a_group_of_one_is_the_images_own_content_and_order_does_not_matter(estimator):
    images = views(4, seed=1)
    batch, _ = estimator.preprocess(images[:1])
    mean, logvar = estimator.content_posteriors(batch)
    one = estimator.predict_group(images[:1])
    np.testing.assert_allclose(one.content_mean, mean[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(one.content_logvar, logvar[0], rtol=1e-6, atol=1e-7)
    forward, backward = estimator.predict_group(images), estimator.predict_group(images[::-1])
    np.testing.assert_allclose(forward.content_mean, backward.content_mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(forward.content_logvar, backward.content_logvar, rtol=1e-6, atol=1e-7)
    assert not np.allclose(forward.content_mean, one.content_mean)  # more views move the posterior


def test_models_without_a_content_log_variance_are_refused_with_a_way_out(exported, tmp_path):
    from export.runtime import PoseEstimator
    from pose_model_fixture import format_1_model

    old = PoseEstimator(format_1_model(exported / "model.onnx", tmp_path / "old.onnx"),
                        providers=["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="export it again"):
        old.predict_group(views(2))


def test_predict_group_cli_prints_views_and_the_embedding(exported, tmp_path, capsys):
    import cv2

    from posenet_mlvae.cli import main

    paths = []
    for i, image in enumerate(views(3, seed=2)):
        paths.append(str(tmp_path / f"view{i}.png"))
        cv2.imwrite(paths[-1], image[:, :, ::-1])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    code = main(["predict", "--model", str(exported / "model.onnx"), "--group", "--json", "--no-progress",
                 *paths, str(tmp_path / "broken.png")])
    captured = capsys.readouterr()
    assert code == 0
    lines = [json.loads(line) for line in captured.out.splitlines()]
    group = next(line for line in lines if "content_mean" in line)
    assert [v["source"] for v in group["views"]] == paths and len(group["content_mean"]) == 8
    assert "broken.png" in captured.err and "1 skipped" in captured.err


def test_retrieval_through_the_runtime_equals_the_torch_diagnostic(exported, tmp_path):
    from data_tools.dataset import GroupedDataset
    from data_tools.image.preprocess import to_model_input
    from eval.retrieval import retrieval_top1
    from posenet_mlvae.evaluation.runtime_retrieval import runtime_retrieval
    from posenet_mlvae.inference import encode_pose
    from posenet_mlvae.toy_data import write_toy_dataset
    from posenet_mlvae.training.checkpoint import load_checkpoint

    root = write_toy_dataset(tmp_path / "toy", groups=12, views=5, test_groups=10, seed=3)
    dataset = GroupedDataset(root, split="test")
    through = runtime_retrieval(exported / "model.onnx", dataset, seed=4)
    model, _ = load_checkpoint(exported / "best.pt", map_location="cpu")
    with torch.no_grad():
        _, _, _, mu, logvar = encode_pose(model.eval(), torch.from_numpy(to_model_input(dataset.images(np.arange(50)))))
    reference = retrieval_top1(mu.numpy(), dataset.records["group"], logvar=logvar.numpy(), seed=4)
    for k in ("1", "2", "4"):
        assert through["by_views"][k]["top1"] == pytest.approx(reference[k]["top1"], abs=0.02)
        assert through["by_views"][k]["n_instances"] == 10
    enrolled = retrieval_top1(mu.numpy(), dataset.records["group"], logvar=logvar.numpy(), seed=4,
                              gallery="enrolled")
    for k in ("1", "2"):  # 5 views: a gallery of k views and a query of k
        assert through["by_views_enrolled"][k]["top1"] == pytest.approx(enrolled[k]["top1"], abs=0.02)
    assert through["by_views_enrolled"]["4"]["top1"] is None
