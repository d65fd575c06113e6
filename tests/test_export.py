"""ONNX export, parity with torch, the torch-free ONNX Runtime predictor and the pose overlay.

A small stand-in conv module with the inference signature (images -> azimuth, elevation, theta,
rotation, confidence, mu_obs, mu_content) is exported once per session; the real PoseInference
module is exported too when `posenet_mlvae.inference` is present. CPU only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from data_tools.image import preprocess
from data_tools.geometry import viewpoint_to_rotation
from export.onnx_export import (ParityError, angle_difference_deg, check_parity, export_onnx,
                                random_op_types, read_metadata)
from data_tools.image.draw import draw_pose, pose_outline, typical_extent
from export.runtime import PoseEstimator, choose_providers, preprocessing_metadata
from pose_model_fixture import format_1_model

OUTPUT_NAMES = ["azimuth", "elevation", "theta", "rotation", "confidence", "mu_obs", "mu_content"]
REPO = Path(__file__).resolve().parents[1]


class StandInPose(nn.Module):
    """Tensor-in/tensor-out module with the PoseInference signature (random weights, seeded)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(32, 5 + 8 + 4)

    def forward(self, images: torch.Tensor):
        out = self.head(self.features(images - 0.5) * 4.0)  # (N, 17)
        azimuth = torch.remainder(torch.rad2deg(torch.atan2(out[:, 0], out[:, 1])), 360.0)
        elevation = 90.0 * torch.tanh(out[:, 2])
        theta = 180.0 * torch.tanh(out[:, 3])
        rotation = viewpoint_to_rotation(azimuth, elevation, theta)  # (N, 3, 3)
        return (azimuth, elevation, theta, rotation, torch.sigmoid(out[:, 4]), out[:, 5:13],
                out[:, 13:17])


def drawn_scene(seed: int, height: int, width: int) -> np.ndarray:
    """A deterministic RGB uint8 picture: a gradient with a few filled shapes."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.stack([xs * 255 // max(width - 1, 1), ys * 255 // max(height - 1, 1),
                      np.full_like(xs, 90)], axis=-1).astype(np.uint8)
    for _ in range(4):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(3, width // 2)), int(rng.integers(3, height // 2)))
        cv2.ellipse(image, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
    return image


def model_inputs(count: int, size: int = 64) -> torch.Tensor:
    crops = [preprocess.crop_to_square(drawn_scene(i, 90, 120), size=size) for i in range(count)]
    return torch.from_numpy(preprocess.to_model_input(np.stack(crops)))


def torch_angles(module: nn.Module, batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = module(torch.from_numpy(batch))
    return np.stack([t.numpy() for t in out[:3]], axis=1)  # (N, 3)


def prediction_angles(predictions) -> np.ndarray:
    return np.array([[p.azimuth, p.elevation, p.theta] for p in predictions])


METADATA = {**preprocessing_metadata(64, "pad", 0.1), "categories": json.dumps(["car"]),
            "model_config": json.dumps({"stand_in": True}), "project_version": "test"}


@pytest.fixture(scope="module")
def stand_in() -> nn.Module:
    return StandInPose().eval()


@pytest.fixture(scope="module")
def onnx_path(stand_in, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "stand_in.onnx"
    export_onnx(stand_in, model_inputs(1), out, OUTPUT_NAMES, METADATA)
    return out


@pytest.fixture(scope="module")
def estimator(onnx_path) -> PoseEstimator:
    return PoseEstimator(onnx_path, providers=["CPUExecutionProvider"])


# ----------------------------------------------------------------------------- export + parity

@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_runtime_matches_torch(stand_in, onnx_path, batch):
    report = check_parity(stand_in, onnx_path, model_inputs(batch))
    assert report["passed"] and report["batch"] == batch
    assert report["max_angle_diff_deg"] <= 0.01
    assert set(report["max_abs_diff"]) == set(OUTPUT_NAMES)
    assert report["max_abs_diff"]["rotation"] < 1e-4
    assert report["max_abs_diff"]["mu_obs"] < 1e-4


def test_parity_failure_is_loud(onnx_path):
    other = StandInPose(seed=1).eval()  # different weights: must not pass as the same model
    with pytest.raises(ParityError, match="max angle difference"):
        check_parity(other, onnx_path, model_inputs(3))


def test_angle_difference_wraps_around():
    got = angle_difference_deg(np.array([359.995, 10.0, -179.99]), np.array([0.0, 10.5, 179.99]))
    np.testing.assert_allclose(got, [0.005, 0.5, 0.02], atol=1e-9)


def test_metadata_round_trip_and_graph_shape(onnx_path, estimator):
    import onnx

    assert read_metadata(onnx_path) == METADATA
    assert estimator.metadata == METADATA
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.HasField("dim_value")  # dynamic batch axis
    assert [o.name for o in model.graph.output] == OUTPUT_NAMES


def test_graph_has_no_random_ops(onnx_path, tmp_path):
    import onnx

    assert random_op_types(onnx.load(str(onnx_path))) == []

    class Sampling(StandInPose):
        def forward(self, images):
            outputs = list(super().forward(images))
            outputs[5] = outputs[5] + torch.randn_like(outputs[5])  # a reparameterised sample
            return tuple(outputs)

    with pytest.raises(ValueError, match="RandomNormalLike"):
        export_onnx(Sampling().eval(), model_inputs(2), tmp_path / "s.onnx", OUTPUT_NAMES, {})
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_metadata_must_be_strings(stand_in, tmp_path):
    with pytest.raises(TypeError, match="input_size"):
        export_onnx(stand_in, model_inputs(1), tmp_path / "m.onnx", OUTPUT_NAMES,
                    {"input_size": 64})


def test_fp16_export_keeps_float32_io(stand_in, onnx_path, tmp_path):
    import onnxruntime

    path = export_onnx(stand_in, model_inputs(1), tmp_path / "fp16.onnx", OUTPUT_NAMES, METADATA,
                       fp16=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    assert {o.type for o in session.get_outputs()} == {"tensor(float)"}
    report = check_parity(stand_in, path, model_inputs(5), angle_tolerance_deg=None)
    assert report["passed"] and report["tolerance_deg"] is None
    assert 0.0 < report["max_angle_diff_deg"] < 2.0  # half precision: close, not identical
    import onnx

    weights = [t for t in onnx.load(str(path)).graph.initializer if t.name.endswith("weight")]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    assert path.stat().st_size < 0.75 * onnx_path.stat().st_size


# ----------------------------------------------------------------------------- the predictor

def test_predict_matches_torch_on_the_same_crop(stand_in, estimator):
    image = drawn_scene(7, 100, 140)
    box = (20.5, 10.0, 120.0, 70.0)
    [prediction] = estimator.predict(image, boxes=box)
    crop = preprocess.crop_to_square(image, box=box, margin=0.1, mode="pad", size=64)
    expected = torch_angles(stand_in, preprocess.to_model_input(crop))[0]
    got = np.array([prediction.azimuth, prediction.elevation, prediction.theta])
    assert angle_difference_deg(got, expected).max() <= 0.01
    np.testing.assert_allclose(prediction.rotation,
                               viewpoint_to_rotation(*expected.astype(np.float64)), atol=1e-4)
    assert 0.0 <= prediction.confidence <= 1.0 and prediction.source == "array[0]"


def test_mixed_sizes_paths_and_bgr_in_one_batch(estimator, tmp_path):
    images = [drawn_scene(1, 64, 64), drawn_scene(2, 120, 80), drawn_scene(3, 33, 150)]
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), cv2.cvtColor(images[1], cv2.COLOR_RGB2BGR))
    batch = estimator.predict([images[0], path, images[2]], boxes=[None, (5, 5, 60, 100), None])
    one_by_one = [estimator.predict(images[0])[0],
                  estimator.predict(images[1], boxes=(5, 5, 60, 100))[0],
                  estimator.predict(images[2])[0]]
    np.testing.assert_allclose(prediction_angles(batch), prediction_angles(one_by_one), atol=1e-3)
    assert batch[1].source == str(path)
    bgr = estimator.predict([im[:, :, ::-1] for im in images], color_order="bgr")
    rgb = estimator.predict(images)
    np.testing.assert_array_equal(prediction_angles(bgr), prediction_angles(rgb))


def test_grayscale_rgba_and_16bit_are_converted(estimator, tmp_path):
    rgb = drawn_scene(4, 80, 96)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    reference_rgb = estimator.predict(rgb)[0]
    reference_gray = estimator.predict(np.repeat(gray[:, :, None], 3, axis=2))[0]
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    cv2.imwrite(str(tmp_path / "deep.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    got = estimator.predict([tmp_path / "gray.png", tmp_path / "rgba.png", tmp_path / "deep.png",
                             rgba, rgb.astype(np.uint16) * 257, gray])
    expected = [reference_gray, reference_rgb, reference_rgb, reference_rgb, reference_rgb,
                reference_gray]
    np.testing.assert_allclose(prediction_angles(got), prediction_angles(expected), atol=1e-3)


def test_bad_inputs_give_one_line_errors(estimator, onnx_path, tmp_path):
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("this is not an image")
    with pytest.raises(ValueError, match="notes.jpg: unknown image format"):
        estimator.predict([drawn_scene(0, 64, 64), not_image])
    with pytest.raises(ValueError, match=r"array\[0\]: .*outside the 64x64 image"):
        estimator.predict(drawn_scene(0, 64, 64), boxes=(70, 10, 90, 30))
    with pytest.raises(ValueError, match="2 boxes for 1 images"):
        estimator.predict(drawn_scene(0, 64, 64), boxes=[(0, 0, 5, 5), None])
    with pytest.raises(ValueError, match="color_order"):
        estimator.predict(drawn_scene(0, 64, 64), color_order="hsv")

    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx_path.read_bytes()[: onnx_path.stat().st_size // 2])
    text = tmp_path / "text.onnx"
    text.write_text("hello, not a protobuf")
    for path, message in [(empty, "empty"), (truncated, "not a loadable ONNX model"),
                          (text, "not a loadable ONNX model"), (tmp_path / "none.onnx", "no such")]:
        with pytest.raises(ValueError, match=message) as info:
            PoseEstimator(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
        assert info.value.__cause__ is None  # no chained traceback from inside ONNX Runtime


def test_model_without_metadata_is_refused(stand_in, tmp_path):
    path = export_onnx(stand_in, model_inputs(1), tmp_path / "bare.onnx", OUTPUT_NAMES, {})
    with pytest.raises(ValueError, match="metadata lacks"):
        PoseEstimator(path)


def test_predictor_runs_where_torch_cannot_be_imported(onnx_path, estimator, tmp_path):
    image_path = tmp_path / "scene.png"
    image = drawn_scene(5, 90, 70)
    cv2.imwrite(str(image_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    child = textwrap.dedent(f"""
        import importlib.abc, json, sys

        class BlockTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
                return None

        sys.meta_path.insert(0, BlockTorch())
        import export
        [p] = export.PoseEstimator({str(onnx_path)!r}).predict({str(image_path)!r}, boxes=(3, 4, 60, 80))
        assert "torch" not in sys.modules
        print(json.dumps(p.to_dict()))
    """)
    result = subprocess.run([sys.executable, "-c", child], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    [expected] = estimator.predict(image, boxes=(3, 4, 60, 80))
    assert angle_difference_deg([got["azimuth"], got["elevation"], got["theta"]],
                                [expected.azimuth, expected.elevation, expected.theta]).max() < 1e-3


def test_provider_choice_without_gpu():
    assert choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="available"):
        choose_providers(["CPUExecutionProvider"], ["CUDAExecutionProvider"])


def test_cuda_provider_matches_cpu(onnx_path, estimator):
    import onnxruntime

    from export.runtime import _cuda_device_count

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is not installed (CPU-only onnxruntime build)")
    if _cuda_device_count() == 0:
        pytest.skip("no CUDA GPU visible")
    gpu = PoseEstimator(onnx_path)
    assert gpu.provider in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
    images = [drawn_scene(i, 70, 90) for i in range(4)]
    np.testing.assert_allclose(prediction_angles(gpu.predict(images)),
                               prediction_angles(estimator.predict(images)), atol=0.05)


# ----------------------------------------------------------------------------- overlay

def test_overlay_projects_axes_as_the_camera_sees_them():
    box = (10, 20, 110, 80)
    corners, axes = pose_outline(0.0, 0.0, 0.0, box, typical_extent("car"))
    np.testing.assert_allclose(axes[0], (60.0, 50.0), atol=1e-9)  # origin at the box centre
    # Front view (a = e = theta = 0): object +x (its left) is image right, +z is image up,
    # +y (toward the rear) points away from the camera, so it projects onto the origin.
    assert axes[1][0] > axes[0][0] + 5 and abs(axes[1][1] - axes[0][1]) < 1e-6
    assert axes[3][1] < axes[0][1] - 5 and abs(axes[3][0] - axes[0][0]) < 1e-6
    np.testing.assert_allclose(axes[2], axes[0], atol=1e-6)
    span = corners.max(axis=0) - corners.min(axis=0)  # fitted inside the 100 x 60 box
    assert span[0] <= 100.0 + 1e-6 and span[1] <= 60.0 + 1e-6
    assert span[0] == pytest.approx(100.0) or span[1] == pytest.approx(60.0)
    # Side view from the object's left (a = 90): its rear (+y) is on the image right.
    _, side = pose_outline(90.0, 0.0, 0.0, box, typical_extent("car"))
    assert side[2][0] > side[0][0] + 5  # +y (the rear) appears on the right


def test_draw_pose_colours_the_axes():
    image = np.zeros((120, 160, 3), np.uint8)
    drawn = draw_pose(image, 30.0, 20.0, 0.0, box=(30, 20, 130, 100), extent=typical_extent("car"))
    assert drawn.shape == image.shape and not image.any()  # a copy; the input is untouched
    reds = (drawn[:, :, 0] > 200) & (drawn[:, :, 1] < 60) & (drawn[:, :, 2] < 60)
    blues = (drawn[:, :, 2] > 200) & (drawn[:, :, 0] < 60) & (drawn[:, :, 1] < 60)
    assert reds.sum() > 10 and blues.sum() > 10
    bgr = draw_pose(image, 30.0, 20.0, 0.0, box=(30, 20, 130, 100), color_order="bgr")
    np.testing.assert_array_equal(bgr[:, :, ::-1], draw_pose(image, 30.0, 20.0, 0.0,
                                                              box=(30, 20, 130, 100)))


# ----------------------------------------------------------------------------- the real model + CLI

@pytest.fixture(scope="module")
def real_export(tmp_path_factory):
    """The default-config model (random weights) saved as a checkpoint, exported by the CLI."""
    from posenet_mlvae.training.checkpoint import save_checkpoint
    from posenet_mlvae.cli import main
    from posenet_mlvae.config import ModelConfig, to_dict
    from posenet_mlvae.network.model import build_model

    root = tmp_path_factory.mktemp("real")
    torch.manual_seed(0)
    config = ModelConfig()
    save_checkpoint(root / "best.pt", {"model_config": to_dict(config),
                                       "metadata": {"image_size": 64, "categories": ["car"]},
                                       "model": build_model(config).state_dict()})
    assert main(["export", "--checkpoint", str(root / "best.pt"), "--out",
                 str(root / "model.onnx"), "--with-decoder"]) == 0
    return root


def test_real_model_parity_and_metadata(real_export):
    import onnx

    from posenet_mlvae.inference import load_inference_module

    module, info = load_inference_module(real_export / "best.pt")
    path = real_export / "model.onnx"
    for batch in (1, 5):
        assert check_parity(module, path, model_inputs(batch))["max_angle_diff_deg"] <= 0.01
    metadata = read_metadata(path)
    assert json.loads(metadata["model_config"]) == info["model_config"]
    assert json.loads(metadata["categories"]) == ["car"]
    assert metadata["angle_convention"] == "PASCAL3D+ degrees: R = Rz(theta) Rx(e-90) Rz(-a)"
    assert (metadata["input_size"], metadata["color_order"], metadata["crop_mode"]) == \
        ("64", "RGB", "pad")
    assert metadata["normalization"].startswith("x/255")
    assert metadata["model_format_version"] == "3"
    assert [o.name for o in onnx.load(str(path)).graph.output] == list(info["outputs"]) == [
        "azimuth", "elevation", "theta", "rotation", "confidence", "mu_obs", "mu_content", "logvar_content"]
    assert not list(real_export.glob(".*"))  # no temporary files left behind

    image = drawn_scene(11, 120, 90)
    [prediction] = PoseEstimator(path).predict(image, boxes=(10, 20, 80, 100))
    # the predictor crops by the rule in the metadata (the default rule: margin 0.1) ...
    assert float(metadata["crop_margin"]) == preprocess.DEFAULT_CROP_RULE.margin
    crop = preprocess.crop_to_square(image, box=(10, 20, 80, 100), margin=float(metadata["crop_margin"]),
                                     mode=metadata["crop_mode"], size=64)
    expected = torch_angles(module, preprocess.to_model_input(crop))[0]
    assert angle_difference_deg([prediction.azimuth, prediction.elevation, prediction.theta],
                                expected).max() <= 0.01
    # ... and another margin's crop is a different input: this check can fail
    other = preprocess.crop_to_square(image, box=(10, 20, 80, 100), margin=0.0, size=64)
    assert not np.array_equal(other, crop)


def test_a_format_1_model_with_mu_group_still_runs(real_export, tmp_path):
    import onnx

    from posenet_mlvae.inference import load_inference_module

    old_path = format_1_model(real_export / "model.onnx", tmp_path / "format1.onnx")
    assert "mu_group" in [o.name for o in onnx.load(str(old_path)).graph.output]
    new, old = PoseEstimator(real_export / "model.onnx"), PoseEstimator(old_path)
    assert (new.model_format_version, old.model_format_version) == (3, 1)
    batch = model_inputs(3).numpy()
    new_out, old_out = new.run(batch), old.run(batch)
    assert set(old_out) == set(new_out) - {"logvar_content"} and "mu_group" not in old_out
    np.testing.assert_array_equal(old_out["mu_content"], new_out["mu_content"])
    module, _ = load_inference_module(real_export / "best.pt")
    with torch.no_grad():
        expected = module(torch.from_numpy(batch))[6].numpy()  # each image's own content mean
    np.testing.assert_allclose(old_out["mu_content"], expected, atol=1e-4)
    assert prediction_angles(old.predict_preprocessed(batch, ["a", "b", "c"])).tolist() == \
        prediction_angles(new.predict_preprocessed(batch, ["a", "b", "c"])).tolist()

def test_zoom_average_is_in_the_graph_and_export_can_leave_it_out(tmp_path_factory, tmp_path):
    """The default model averages zoomed views inside the graph; `export --zoom-average 0`
    records and exports the model without them: each ONNX file equals torch with its own setting
    (within the export's 0.01 deg), and the two differ."""
    from pose_model_fixture import exported_pose_model
    from posenet_mlvae.cli import main
    from posenet_mlvae.inference import load_inference_module

    folder = exported_pose_model(tmp_path_factory)  # the default config: zoom_average 0.1
    plain_path = tmp_path / "plain.onnx"
    assert main(["export", "--checkpoint", str(folder / "best.pt"), "--out", str(plain_path),
                 "--zoom-average", "0"]) == 0
    assert json.loads(read_metadata(folder / "model.onnx")["model_config"])["zoom_average"] == 0.1
    assert json.loads(read_metadata(plain_path)["model_config"])["zoom_average"] == 0.0
    batch = model_inputs(4)
    zoomed, _ = load_inference_module(folder / "best.pt")
    plain, _ = load_inference_module(folder / "best.pt", zoom_average=0.0)
    assert check_parity(zoomed, folder / "model.onnx", batch)["max_angle_diff_deg"] <= 0.01
    assert check_parity(plain, plain_path, batch)["max_angle_diff_deg"] <= 0.01
    against_plain = check_parity(zoomed, plain_path, batch, angle_tolerance_deg=None)
    assert against_plain["max_angle_diff_deg"] > 0.05  # the zooms are in the graph, not only in the metadata


def test_real_decoder_export(real_export):
    import onnxruntime

    from posenet_mlvae.inference import load_decoder_module

    session = onnxruntime.InferenceSession(str(real_export / "model_decoder.onnx"),
                                           providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["mu_obs", "mu_content"]
    sizes = {i.name: i.shape[1] for i in session.get_inputs()}  # latent sizes of the model's config
    rng = np.random.default_rng(0)
    mu_obs = rng.standard_normal((3, sizes["mu_obs"])).astype(np.float32)
    mu_content = rng.standard_normal((3, sizes["mu_content"])).astype(np.float32)
    [images] = session.run(None, {"mu_obs": mu_obs, "mu_content": mu_content})
    with torch.no_grad():
        expected = load_decoder_module(real_export / "best.pt")(torch.from_numpy(mu_obs),
                                                                torch.from_numpy(mu_content))
    assert images.shape == (3, 3, 32, 32)  # the default model reconstructs 64 px images at 32 px
    np.testing.assert_allclose(images, expected.numpy(), atol=1e-4)


def test_cli_predict_json_overlay_and_bad_files(real_export, tmp_path, capsys):
    from posenet_mlvae.cli import main

    good = tmp_path / "car.png"
    cv2.imwrite(str(good), cv2.cvtColor(drawn_scene(2, 100, 130), cv2.COLOR_RGB2BGR))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    model = str(real_export / "model.onnx")
    code = main(["predict", "--model", model, str(good), str(bad), "--json",
                 "--overlay", str(tmp_path / "overlays")])
    captured = capsys.readouterr()
    assert code == 0
    rows = [json.loads(line) for line in captured.out.splitlines()]  # JSON lines, input order
    assert [r["source"] for r in rows if "error" not in r] == [str(good)]
    assert [r["source"] for r in rows if "error" in r] == [str(bad)]
    assert "broken.jpg" in captured.err and "1 skipped" in captured.err
    overlay = cv2.imread(str(tmp_path / "overlays" / "car_pose.png"))
    assert overlay is not None and overlay.shape == (100, 130, 3)

    assert main(["predict", "--model", model, str(bad)]) == 1  # nothing usable: non-zero
    assert main(["predict", "--model", model, str(good), "--box", "200,10,300,50"]) == 1
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert main(["predict", "--model", str(empty), str(good)]) == 2
    assert "empty" in capsys.readouterr().err


def test_cli_bench_infer_runs(real_export, capsys):
    from posenet_mlvae.cli import main

    assert main(["bench", "infer", "--model", str(real_export / "model.onnx"), "--runs", "2",
                 "--batch", "4", "--batch-runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "torch eager CPU" in out and "ONNX Runtime CPU" in out and "x torch" in out
