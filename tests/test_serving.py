"""Serving: PoseEstimator under threads, `predict` streaming a folder, refused model files, theta wrap.

The model is a small hand-built ONNX graph (no torch): each output is a known function of the
crop's channel means, so every prediction can be checked against numpy. Its raw theta spans
(-360, 360) and its raw azimuth (-100, 620), so the runtime's wrapping is exercised.
"""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from data_tools.geometry import wrap_azimuth, wrap_theta
from data_tools.image.preprocess import crop_to_square
from export.runtime import PoseEstimator, preprocessing_metadata
from posenet_mlvae.cli import main

SIZE = 32


def expected_angles(crop: np.ndarray) -> np.ndarray:
    """What the graph computes from one (S, S, 3) uint8 crop, wrapped as the runtime must."""
    r, g, b = (crop.astype(np.float64) / 255.0).mean(axis=(0, 1))
    return np.array([wrap_azimuth(720.0 * r - 100.0), 180.0 * g - 90.0, wrap_theta(720.0 * b - 360.0)])


def pose_graph(metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """images (N, 3, S, S) -> azimuth = 720 r - 100, elevation = 180 g - 90, theta = 720 b - 360,
    rotation = identity, confidence = mean (r, g, b: channel means)."""
    def constant(name, value):
        return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["means"], axes=[2, 3], keepdims=0),  # (N, 3)
        helper.make_node("ReduceMean", ["images"], ["confidence"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["means", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "offset"], ["angles"]),
        helper.make_node("Split", ["angles"], ["a2", "e2", "t2"], axis=1),
        helper.make_node("Squeeze", ["a2", "axis1"], ["azimuth"]),
        helper.make_node("Squeeze", ["e2", "axis1"], ["elevation"]),
        helper.make_node("Squeeze", ["t2", "axis1"], ["theta"]),
        helper.make_node("Shape", ["images"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "one"], ["batch"]),
        helper.make_node("Concat", ["batch", "three_three"], ["rotation_shape"], axis=0),
        helper.make_node("Expand", ["eye", "rotation_shape"], ["rotation"]),
    ]
    initializers = [
        constant("scale", [720.0, 180.0, 720.0]), constant("offset", [-100.0, -90.0, -360.0]),
        constant("eye", np.eye(3)[None]),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([3, 3], np.int64), "three_three"),
    ]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in
               [("azimuth", ["N"]), ("elevation", ["N"]), ("theta", ["N"]),
                ("rotation", ["N", 3, 3]), ("confidence", ["N"])]]
    graph = helper.make_graph(
        nodes, "stand_in_pose",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    meta = preprocessing_metadata(SIZE, "pad", 0.0) if metadata is None else metadata
    for key, value in {**meta, "categories": json.dumps(["car"])}.items():
        model.metadata_props.add(key=key, value=value)
    return model


def write_pose_model(path, metadata: dict[str, str] | None = None):
    """A stand-in pose model at `path` (see `pose_graph`); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(pose_graph(metadata), str(path))
    return path


def scene(seed: int, height: int = 40, width: int = 50) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return write_pose_model(tmp_path_factory.mktemp("model") / "pose.onnx")


def test_predictions_match_numpy_and_angles_are_wrapped(model_path):
    estimator = PoseEstimator(model_path, providers=["CPUExecutionProvider"])
    images = [scene(k) for k in range(12)] + [np.full((20, 20, 3), 255, np.uint8)]
    predictions = estimator.predict(images)
    for image, prediction in zip(images, predictions):
        expected = expected_angles(crop_to_square(image, size=SIZE))
        got = [prediction.azimuth, prediction.elevation, prediction.theta]
        np.testing.assert_allclose(got, expected, atol=1e-3)
    thetas = np.array([p.theta for p in predictions])
    azimuths = np.array([p.azimuth for p in predictions])
    assert np.all((thetas > -180) & (thetas <= 180)) and np.all((azimuths >= 0) & (azimuths < 360))
    # white: raw theta 720 - 360 = 360 -> 0, raw azimuth 620 -> 260 (outside the range before wrapping)
    assert predictions[-1].theta == pytest.approx(0.0, abs=1e-3)
    assert predictions[-1].azimuth == pytest.approx(260.0, abs=1e-3)
    raw = estimator.run(estimator.preprocess(images)[0])
    assert np.all((raw["theta"] > -180) & (raw["theta"] <= 180))


def test_eight_threads_give_the_serial_results(model_path):
    estimator = PoseEstimator(model_path, providers=["CPUExecutionProvider"], threads=1)
    inputs = [scene(k, 30 + k % 7, 40 + k % 5) for k in range(200)]
    serial = np.array([[p.azimuth, p.elevation, p.theta, p.confidence]
                       for image in inputs for p in estimator.predict(image)])
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            order = np.random.default_rng(index).permutation(len(inputs))  # each thread its own order
            got = np.zeros_like(serial)
            for k in order:
                [p] = estimator.predict(inputs[k])
                got[k] = [p.azimuth, p.elevation, p.theta, p.confidence]
            results[index] = got
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(results) == 8
    for got in results.values():
        np.testing.assert_array_equal(got, serial)


def test_predict_streams_a_folder_as_json_lines(model_path, tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    images = {}
    for k in range(23):
        path = folder / ("sub" if k % 3 == 0 else "") / f"img{k:02d}.png"
        images[str(path)] = scene(k)
        cv2.imwrite(str(path), cv2.cvtColor(images[str(path)], cv2.COLOR_RGB2BGR))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, not picked")
    code = main(["predict", "--model", str(model_path), str(folder), "--json", "--batch-size", "4",
                 "--no-progress", "--providers", "CPUExecutionProvider"])
    captured = capsys.readouterr()
    assert code == 0
    rows = [json.loads(line) for line in captured.out.splitlines()]
    sources = [row["source"] for row in rows]
    assert sources == sorted(sources) and len(rows) == 25  # every image file once, in path order
    errors = {row["source"]: row["error"] for row in rows if "error" in row}
    assert set(errors) == {str(folder / "broken.jpg"), str(folder / "empty.png")}
    assert "empty file" in errors[str(folder / "empty.png")]
    for row in rows:
        if "error" not in row:
            expected = expected_angles(crop_to_square(images[row["source"]], size=SIZE))
            np.testing.assert_allclose([row["azimuth"], row["elevation"], row["theta"]], expected,
                                       atol=1e-3)
    assert "predicted 23 of 25 images (2 skipped)" in captured.err
    skip_lines = [line for line in captured.err.splitlines() if line.startswith("skipped ")]
    assert len(skip_lines) == 2 and all(str(folder) in line for line in skip_lines)


def test_predict_memory_stays_flat_over_a_folder(model_path, tmp_path):
    """Peak RSS of `predict` over 100 and 600 images differs by far less than holding them
    (both counts are past the allocator's warm-up of the first batches)."""
    import subprocess
    import sys

    def peak_rss_kb(count: int) -> int:
        folder = tmp_path / f"n{count}"
        folder.mkdir()
        image = scene(0, 240, 320)
        ok, encoded = cv2.imencode(".bmp", image)  # uncompressed: writing is fast
        for k in range(count):
            (folder / f"{k:04d}.bmp").write_bytes(encoded.tobytes())
        code = ("import resource, sys; from posenet_mlvae.cli import main; "
                f"rc = main(['predict', '--model', {str(model_path)!r}, {str(folder)!r}, '--json', "
                "'--no-progress', '--providers', 'CPUExecutionProvider']); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.splitlines()) == count
        return int(done.stderr.strip().splitlines()[-1])

    small, large = peak_rss_kb(100), peak_rss_kb(600)
    held = 500 * 240 * 320 * 3 / 1024  # KB the 500 extra decoded images would take if kept
    assert large - small < 0.1 * held, (small, large)


def test_model_with_external_data_outside_its_folder_is_refused(tmp_path, capsys):
    model = pose_graph()
    outside = tmp_path / "secret.bin"
    np.array([720.0, 180.0, 720.0], np.float32).tofile(outside)
    for location in ("../secret.bin", str(outside)):
        tensor = next(t for t in model.graph.initializer if t.name == "scale")
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        del tensor.external_data[:]
        tensor.data_location = TensorProto.EXTERNAL
        tensor.external_data.add(key="location", value=location)
        path = tmp_path / "model" / "pose.onnx"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(model.SerializeToString())
        with pytest.raises(ValueError, match="outside the model's folder") as info:
            PoseEstimator(path)
        assert "'scale'" in str(info.value) and location in str(info.value)
        assert "\n" not in str(info.value)
        assert main(["predict", "--model", str(path), str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "outside the model's folder" in err and "Traceback" not in err


def test_symlinked_external_data_leaving_the_folder_is_refused_and_inside_is_fine(tmp_path):
    from export.model_files import check_external_data, external_data_locations

    model = pose_graph()
    (tmp_path / "model").mkdir()
    tensor = next(t for t in model.graph.initializer if t.name == "scale")
    data = numpy_helper.to_array(tensor).tobytes()
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="weights.bin")
    path = tmp_path / "model" / "pose.onnx"
    path.write_bytes(model.SerializeToString())
    assert external_data_locations(path.read_bytes()) == [("scale", "weights.bin")]
    (tmp_path / "model" / "weights.bin").write_bytes(data)
    check_external_data(path)  # inside the folder: accepted
    estimator = PoseEstimator(path)
    [prediction] = estimator.predict(np.full((8, 8, 3), 255, np.uint8))
    assert prediction.azimuth == pytest.approx(260.0, abs=1e-3)  # the external scale was read
    (tmp_path / "model" / "weights.bin").unlink()
    (tmp_path / "elsewhere.bin").write_bytes(data)
    (tmp_path / "model" / "weights.bin").symlink_to(tmp_path / "elsewhere.bin")
    with pytest.raises(ValueError, match="outside the model's folder"):
        check_external_data(path)


def test_external_data_walker_agrees_with_onnx(tmp_path):
    """Every tensor that onnx itself stores externally is found, with the same location."""
    from onnx.external_data_helper import _get_all_tensors, convert_model_to_external_data

    from export.model_files import external_data_locations

    model = pose_graph()
    convert_model_to_external_data(model, all_tensors_to_one_file=False, size_threshold=0)
    expected = sorted((t.name, next(e.value for e in t.external_data if e.key == "location"))
                      for t in _get_all_tensors(model) if t.data_location == TensorProto.EXTERNAL)
    assert len(expected) == 7
    assert sorted(external_data_locations(model.SerializeToString())) == expected


def test_model_without_the_preprocessing_contract_is_refused(tmp_path, capsys):
    path = write_pose_model(tmp_path / "bare.onnx", metadata={"producer_note": "no contract"})
    with pytest.raises(ValueError, match="lacks the preprocessing contract") as info:
        PoseEstimator(path)
    assert "input_size" in str(info.value) and "crop_mode" in str(info.value)
    assert main(["predict", "--model", str(path), str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "preprocessing contract" in err and str(path) in err
