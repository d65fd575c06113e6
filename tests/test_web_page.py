"""The web page (web/, written by `posenet-mlvae export --web DIR`) against the Python runtime.

1. web/src/preprocess.js, run by node, against data_tools.image.preprocess.crop_to_square: the same
   crops pixel for pixel over random images and boxes, both crop modes, shrinking and enlarging.
2. The page in Debian's headless chromium (selenium + chromium-driver), served from localhost
   by the folder's own serve.py: 22 test images (boxes partly outside, sub-pixel boxes, gray,
   RGBA with hidden colours under alpha 0, JPEG, BMP, WebP) give the same model input as
   `export.PoseEstimator` byte for byte (JPEG: same angles) and the same angles within 0.05 deg;
   another crop rule in the metadata is followed; the overlay is drawn inside the box; bad
   images and broken models show messages; a webcam frame (Chromium's fake camera) is
   predicted; nothing is fetched from outside; `python -m http.server` serves it (one thread).

`make test` installs chromium, chromium-driver and onnxruntime-web first (`make browser-deps
web`); the browser tests run those targets themselves when something is missing and skip,
saying what to install, only where that fails.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_tools.image import preprocess
from data_tools.atomic_write import atomic_write_bytes, atomic_write_image
from export.onnx_export import angle_difference_deg, read_metadata
from export.runtime import PoseEstimator
from pose_model_fixture import CHECKPOINT_CROP_RULE, exported_pose_model, format_1_model

REPO = Path(__file__).resolve().parents[1]
HARNESS = Path(__file__).with_name("web_preprocess_harness.mjs")
ANGLE_TOLERANCE_DEG = 0.05
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
#: Appended to pixel-parity failures: the page repeats OpenCV 5.0's arithmetic (pyproject.toml).
OPENCV_NOTE = f"with OpenCV {cv2.__version__} installed; the page repeats OpenCV 5.0's arithmetic"


# ----------------------------------------------------------------------------- test images

def scene(seed: int, height: int, width: int) -> np.ndarray:
    """A deterministic RGB picture: a colour gradient with filled ellipses (no flat regions)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.stack([xs * 255 // max(width - 1, 1), ys * 255 // max(height - 1, 1),
                      (xs + ys) * 3 % 256], axis=-1).astype(np.uint8)
    for _ in range(5):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(3, max(4, width // 2))), int(rng.integers(3, max(4, height // 2))))
        cv2.ellipse(image, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
    return image


def with_alpha(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGBA from RGB and an alpha plane (the RGB stays as it is, also under alpha 0)."""
    return np.dstack([rgb, alpha.astype(np.uint8)])


def write_test_images(folder: Path) -> list[tuple[str, tuple[float, ...] | None]]:
    """Files of several formats and the box to use with each (None: the whole image)."""
    rng = np.random.default_rng(7)
    wide_alpha = np.tile(np.linspace(0, 255, 120), (100, 1))
    hidden = np.zeros((90, 110))
    hidden[20:70, 30:90] = 255  # colours under alpha 0 must survive decoding
    cases = [
        ("rgb_small.png", scene(1, 48, 64), None),                          # enlarging
        ("rgb_wide.png", scene(2, 120, 200), (30, 20, 150, 100)),
        ("rgb_big.png", scene(3, 300, 400), None),                          # area shrinking
        ("rgb_square.png", scene(4, 256, 256), (0, 0, 256, 256)),
        ("rgb_out_left.png", scene(5, 100, 140), (-30, 10, 60, 90)),       # partly outside
        ("rgb_out_corner.png", scene(6, 90, 120), (70, 50, 160, 130)),     # partly outside
        ("rgb_subpixel.png", scene(7, 150, 150), (10.25, 20.5, 110.75, 100.125)),
        # Enlarging a box. Not one inside a single ellipse: a crop of one colour has no pose,
        # and runtimes break its ties between a and 360 - a differently.
        ("rgb_tiny_box.png", scene(8, 200, 200), (60, 60, 80, 75)),
        ("rgb_tall.png", scene(9, 200, 60), (0, 0, 60, 200)),
        ("rgb_large.png", scene(10, 384, 512), None),
        ("rgb_edge.png", scene(11, 100, 100), (99, 99, 130, 130)),         # 1 px inside
        ("rgb_noise.png", rng.integers(0, 256, (70, 70, 3), dtype=np.uint8), None),
        ("gray.png", cv2.cvtColor(scene(12, 110, 90), cv2.COLOR_RGB2GRAY), (5, 5, 80, 100)),
        ("gray_whole.png", cv2.cvtColor(scene(13, 64, 64), cv2.COLOR_RGB2GRAY), None),
        ("rgba_gradient.png", with_alpha(scene(14, 100, 120), wide_alpha), (10, 10, 100, 90)),
        ("rgba_hidden.png", with_alpha(scene(15, 90, 110), hidden), None),
        ("rgba_noise.png", with_alpha(scene(16, 250, 300), rng.integers(0, 256, (250, 300))),
         (50, 40, 260, 240)),
        ("photo.jpg", scene(17, 160, 240), (20, 30, 200, 150)),
        ("gray.jpg", cv2.cvtColor(scene(18, 100, 100), cv2.COLOR_RGB2GRAY), None),
        ("image.bmp", scene(19, 80, 100), (-10, -10, 50, 60)),
        ("lossless.webp", scene(20, 90, 90), None),
        ("rgb_margin.png", scene(21, 128, 96), (8, 8, 88, 120)),
    ]
    written = []
    for name, image, box in cases:
        path = folder / name
        if image.ndim == 2:
            ok, data = cv2.imencode(path.suffix, image)
            assert ok
            atomic_write_bytes(path, data.tobytes())
        elif image.shape[2] == 4:
            ok, data = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA))
            assert ok
            atomic_write_bytes(path, data.tobytes())
        else:
            params = [cv2.IMWRITE_WEBP_QUALITY, 101] if path.suffix == ".webp" else []
            ok, data = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
            assert ok
            atomic_write_bytes(path, data.tobytes())
        written.append((name, box))
    return written


# ----------------------------------------------------------------------------- 1. crops in node

def _node_crops(cases: list[dict]) -> list[dict]:
    result = subprocess.run(["node", str(HARNESS)], input=json.dumps(cases), capture_output=True,
                            text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (Node.js runs "
                    "the page's preprocessing here): apt-get install -y nodejs")
def test_page_crops_equal_python_crops_pixel_for_pixel():
    rng = np.random.default_rng(0)
    cases, expected = [], []
    for i in range(160):
        height, width = (int(v) for v in rng.integers(3, 220, 2))
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        kind = i % 5
        if kind == 0:
            box = None
        elif kind == 1:  # larger than the image on some sides
            box = [float(rng.integers(-25, 20)), float(rng.integers(-25, 20)),
                   float(width + rng.integers(-15, 30)), float(height + rng.integers(-15, 30))]
        elif kind == 2:  # sub-pixel, often partly outside
            x1, y1 = rng.uniform(-width / 3, width * 0.7), rng.uniform(-height / 3, height * 0.7)
            box = [x1, y1, x1 + rng.uniform(2, width), y1 + rng.uniform(2, height)]
        elif kind == 3:  # very wide and flat: stretch shrinks one axis and enlarges the other
            x1 = rng.uniform(0, width * 0.5)
            box = [x1, 1.5, x1 + rng.uniform(width * 0.3, width), 1.5 + rng.uniform(2, 6)]
        else:  # small boxes: enlarging
            x1, y1 = rng.uniform(0, width * 0.5), rng.uniform(0, height * 0.5)
            box = [x1, y1, x1 + rng.uniform(1, 30), y1 + rng.uniform(1, 30)]
        margin = float(rng.choice([0.0, 0.1, 0.15, 0.37]))
        mode = str(rng.choice(preprocess.CROP_MODES))
        size = int(rng.choice([64, 64, 128, 32]))
        try:
            expected.append(preprocess.crop_to_square(image, box, margin, mode, size))
        except ValueError as error:  # boxes outside the image: both must refuse
            expected.append(str(error))
        cases.append({"width": width, "height": height, "box": box, "margin": margin,
                      "mode": mode, "size": size,
                      "data": base64.b64encode(image.tobytes()).decode()})
    results = _node_crops(cases)
    refused = 0
    for case, want, got in zip(cases, expected, results):
        if isinstance(want, str):
            assert "error" in got and "outside" in got["error"], (case["box"], want, got)
            refused += 1
            continue
        assert "error" not in got, (case["box"], got)
        crop = np.frombuffer(base64.b64decode(got["data"]), np.uint8).reshape(want.shape)
        mismatch = crop != want
        assert not mismatch.any(), (f"{int(mismatch.sum())} values differ for box {case['box']} "
                                    f"{case['mode']} margin {case['margin']} size {case['size']} "
                                    f"in a {case['width']}x{case['height']} image, {OPENCV_NOTE}")
    assert refused < len(cases) // 4  # most cases really compared pixels


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_page_crops_refuse_bad_boxes_like_python():
    image = {"width": 10, "height": 8, "data": base64.b64encode(bytes(240)).decode(),
             "margin": 0.0, "mode": "pad", "size": 4}
    results = _node_crops([{**image, "box": [5, 5, 5, 7]}, {**image, "box": [20, 1, 30, 5]},
                           {**image, "box": [1, 1, 5]}, {**image, "box": None, "mode": "zoom"}])
    assert "empty" in results[0]["error"]
    assert "outside the 10x8 image" in results[1]["error"]
    assert "4 finite numbers" in results[2]["error"]
    assert "crop mode must be one of pad, stretch" in results[3]["error"]


# ----------------------------------------------------------------------------- 2. the page

def _browser_missing() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    ort = REPO / "web" / "node_modules" / "onnxruntime-web" / "dist" / "ort.wasm.min.mjs"
    if not ort.is_file():
        missing.append(str(ort))
    return ", ".join(missing) or None


@pytest.fixture(scope="module")
def tools():
    """Chromium, chromium-driver and onnxruntime-web: installed by `make browser-deps web`."""
    if _browser_missing() and shutil.which("make"):
        result = subprocess.run(["make", "-s", "browser-deps", "web"], cwd=REPO, capture_output=True,
                                text=True, timeout=900)
        hint = " ".join((result.stdout + result.stderr).split())[-300:]
    else:
        hint = ""
    missing = _browser_missing()
    if missing:
        pytest.skip(f"the web page test needs {missing}: run `make browser-deps web` as root, or "
                    f"`sudo apt-get install -y chromium chromium-driver` and `make web` ({hint})")


@pytest.fixture(scope="module")
def site(tools, tmp_path_factory) -> Path:
    folder = exported_pose_model(tmp_path_factory) / "site"
    assert (folder / "index.html").is_file(), "export --web did not write the page"
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[Path, list[tuple[str, tuple[float, ...] | None]]]:
    folder = tmp_path_factory.mktemp("web-images")
    return folder, write_test_images(folder)


class Server:
    """A static server in a child process; url is its base URL."""

    def __init__(self, argv: list[str], cwd: Path, pattern: str):
        self.process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            match = re.search(pattern, line)
            if match:
                self.url = f"http://127.0.0.1:{match.group(1)}/"
                return
            if not line and self.process.poll() is not None:
                break
        self.close()
        raise AssertionError(f"the server {argv} did not start")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(site):
    """The folder's own serve.py (cross-origin isolated, so WASM may use threads)."""
    started = Server([sys.executable, "serve.py", "--port", "0"], site, r"http://127\.0\.0\.1:(\d+)/")
    yield started.url
    started.close()


@pytest.fixture(scope="module")
def driver(tools):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--enable-unsafe-swiftshader",
                     "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                     "--disable-background-networking", "--no-first-run"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_script_timeout(120)
    yield browser
    browser.quit()


def open_page(driver, url: str, expect: str = "ready") -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.ID, "status").get_attribute("data-state") != "loading")
    state = driver.find_element(By.ID, "status").get_attribute("data-state")
    assert state == expect, (driver.find_element(By.ID, "status").text,
                             driver.find_element(By.ID, "messages").text)


def rows(driver) -> list[dict]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#results tbody tr')].map(r => ({...r.dataset}))")


def wait_rows(driver, count: int, boxes: dict[str, str] | None = None) -> list[dict]:
    """Wait until `count` rows are predicted (with the given data-box per name, if any)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        current = rows(d)
        if len(current) < count or any(r["state"] == "pending" for r in current):
            return False
        return all(r.get("box", "") == boxes[r["name"]] for r in current if r["name"] in boxes) \
            if boxes else True

    WebDriverWait(driver, 45, poll_frequency=0.2).until(ready)
    return rows(driver)


def upload(driver, paths: list[Path]) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "file-input").send_keys("\n".join(str(p) for p in paths))


def set_box(driver, name: str, box) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.CSS_SELECTOR, f'figure[data-name="{name}"] .box-input')
    field.clear()
    field.send_keys(",".join(repr(float(v)) for v in box) + Keys.ENTER)


def page_box(box) -> str:
    """The page's data-box text for a box (JavaScript's number formatting)."""
    return ",".join(format(float(v), ".15g") for v in box) if box else ""


def predict_on_page(driver, folder: Path, cases) -> tuple[list[dict], list[np.ndarray]]:
    """Upload the images, set their boxes, return the rows and the model inputs, in order."""
    upload(driver, [folder / name for name, _ in cases])
    wait_rows(driver, len(cases))
    for name, box in cases:
        if box is not None:
            set_box(driver, name, box)
    result = wait_rows(driver, len(cases), {name: page_box(box) for name, box in cases})
    inputs = [np.frombuffer(base64.b64decode(text), np.float32).reshape(3, 64, 64)
              for text in driver.execute_script("return window.poseApp.modelInputs()")]
    return result, inputs


def page_angles(result: list[dict]) -> np.ndarray:
    return np.array([[float(r[k]) for k in ("azimuth", "elevation", "theta")] for r in result])


def python_angles(predictions) -> np.ndarray:
    return np.array([[p.azimuth, p.elevation, p.theta] for p in predictions])


def test_export_wrote_a_self_contained_folder(site):
    names = {str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()}
    assert {"index.html", "style.css", "serve.py", "model.onnx", "extents.json",
            "ort/ort.wasm.min.mjs", "ort/ort-wasm-simd-threaded.mjs",
            "ort/ort-wasm-simd-threaded.wasm", "src/app.js", "src/preprocess.js"} <= names
    for name in ["index.html", "style.css", *sorted(n for n in names if n.startswith("src/"))]:
        text = (site / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), f"{name} names a host"
    assert read_metadata(site / "model.onnx") == read_metadata(site.parent / "model.onnx")
    assert "wrote the web page" in (site.parent / "export.log").read_text()


def test_page_matches_the_python_runtime(driver, server, site, images):
    folder, cases = images
    open_page(driver, server)
    result, inputs = predict_on_page(driver, folder, cases)
    assert [r["name"] for r in result] == [name for name, _ in cases]
    assert all(r["state"] == "done" for r in result), result

    estimator = PoseEstimator(site / "model.onnx", providers=["CPUExecutionProvider"])
    paths, boxes = [folder / name for name, _ in cases], [box for _, box in cases]
    expected_inputs, _ = estimator.preprocess(paths, boxes)
    expected = estimator.predict(paths, boxes)
    differences = angle_difference_deg(page_angles(result), python_angles(expected))
    worst = differences.max(axis=1)
    report = {name: round(float(w), 5) for (name, _), w in zip(cases, worst)}
    assert worst.max() <= ANGLE_TOLERANCE_DEG, report
    confidence = np.array([float(r["confidence"]) for r in result])
    np.testing.assert_allclose(confidence, [p.confidence for p in expected], atol=1e-3)

    # The page feeds the model exactly what Python feeds it (decode + crop + NCHW), except
    # that a browser's JPEG decoder may round differently from OpenCV's.
    for (name, _), page_input, python_input in zip(cases, inputs, expected_inputs):
        if name.endswith(".jpg"):
            assert np.abs(page_input - python_input).max() <= 8 / 255, name
        else:
            assert np.array_equal(page_input, python_input), f"{name}, {OPENCV_NOTE}"

    # The comparison can fail: a 0.05 margin change moves these angles by far more.
    other = PoseEstimator(site / "model.onnx", providers=["CPUExecutionProvider"])
    other.crop_margin = CHECKPOINT_CROP_RULE["margin"] + 0.05
    moved = angle_difference_deg(python_angles(other.predict(paths, boxes)),
                                 python_angles(expected)).max(axis=1)
    assert np.median(moved) > 4 * ANGLE_TOLERANCE_DEG, moved


def test_page_follows_the_crop_rule_in_the_metadata(driver, server, site, images):
    import onnx

    from data_tools.atomic_write import atomic_open

    model = onnx.load(str(site / "model.onnx"))
    for prop in model.metadata_props:
        if prop.key in ("crop_mode", "crop_margin"):
            prop.value = {"crop_mode": "stretch", "crop_margin": "0.05"}[prop.key]
    with atomic_open(site / "model_stretch.onnx", "wb") as f:
        f.write(model.SerializeToString())
    folder, cases = images
    cases = [c for c in cases if c[0] in ("rgb_wide.png", "rgb_tall.png", "gray.png",
                                          "rgba_noise.png", "rgb_subpixel.png")]
    open_page(driver, server + "?model=model_stretch.onnx")
    assert "crop stretch with margin 0.05" in driver.find_element("id", "status").text
    result, inputs = predict_on_page(driver, folder, cases)
    estimator = PoseEstimator(site / "model_stretch.onnx", providers=["CPUExecutionProvider"])
    paths, boxes = [folder / name for name, _ in cases], [box for _, box in cases]
    expected_inputs, _ = estimator.preprocess(paths, boxes)
    assert all(np.array_equal(a, b) for a, b in zip(inputs, expected_inputs)), OPENCV_NOTE
    differences = angle_difference_deg(page_angles(result), python_angles(estimator.predict(paths, boxes)))
    assert differences.max() <= ANGLE_TOLERANCE_DEG


@pytest.mark.parametrize("format_version, output", [(3, "mu_content"), (1, "mu_group")])
def test_page_reads_the_content_mean_of_both_model_formats(driver, server, site, images,
                                                           format_version, output):
    name = "model.onnx"
    if format_version == 1:  # the content mean still called mu_group, no version key
        name = format_1_model(site / "model.onnx", site / "model_format1.onnx").name
    folder, cases = images
    cases = [c for c in cases if c[0] in ("rgb_wide.png", "gray.png")]
    open_page(driver, f"{server}?model={name}")
    predict_on_page(driver, folder, cases)
    assert driver.execute_script("return window.poseApp.state.model.contentOutput") == output
    page = [driver.execute_async_script(
        "window.poseApp.contentMean(arguments[0]).then(arguments[arguments.length - 1])", i)
        for i in range(len(cases))]
    estimator = PoseEstimator(site / name, providers=["CPUExecutionProvider"])
    assert estimator.model_format_version == format_version
    batch, _ = estimator.preprocess([folder / n for n, _ in cases], [box for _, box in cases])
    expected = estimator.run(batch)["mu_content"]
    assert np.asarray(page).shape == expected.shape and expected.std() > 0
    np.testing.assert_allclose(np.asarray(page), expected, atol=1e-3)

def _canvas_png(driver, name: str) -> np.ndarray:
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.CSS_SELECTOR, f'figure[data-name="{name}"] canvas')
    shot = cv2.imdecode(np.frombuffer(canvas.screenshot_as_png, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(shot, cv2.COLOR_BGR2RGB)


def test_overlay_is_drawn_inside_the_box(driver, server, tmp_path):
    from selenium.webdriver.common.by import By

    gray = cv2.cvtColor(scene(30, 180, 240), cv2.COLOR_RGB2GRAY)  # no colour of its own
    atomic_write_image(tmp_path / "gray_scene.png", np.repeat(gray[:, :, None], 3, axis=2))
    box = (40, 30, 200, 150)
    open_page(driver, server)
    upload(driver, [tmp_path / "gray_scene.png"])
    wait_rows(driver, 1)
    set_box(driver, "gray_scene.png", box)
    wait_rows(driver, 1, {"gray_scene.png": page_box(box)})
    with_overlay = _canvas_png(driver, "gray_scene.png")
    driver.find_element(By.ID, "overlay-toggle").click()
    without = _canvas_png(driver, "gray_scene.png")
    assert with_overlay.shape[:2] == without.shape[:2] == gray.shape  # shown at 1:1
    changed = np.abs(with_overlay.astype(int) - without.astype(int)).max(axis=2) > 40
    inside = np.zeros_like(changed)
    inside[box[1] - 3:box[3] + 3, box[0] - 3:box[2] + 3] = True
    near = np.zeros_like(changed)  # the axes may poke out of the box a little, as in predict's
    near[box[1] - 30:box[3] + 30, box[0] - 30:box[2] + 30] = True
    assert changed[inside].sum() > 300, "no overlay drawn inside the box"
    assert changed[~inside].sum() < 0.05 * changed[inside].sum()
    assert not changed[~near].any(), "overlay drawn away from the box"
    colourful = np.ptp(with_overlay.astype(int), axis=2) > 100  # the axes and the 3-D box
    assert colourful[inside].sum() > 300 and not np.ptp(without.astype(int), axis=2).any()


def test_bad_files_show_messages(driver, server, images, tmp_path):
    from selenium.webdriver.common.by import By

    folder, cases = images
    atomic_write_bytes(tmp_path / "notes.jpg", b"this is not an image")
    atomic_write_bytes(tmp_path / "empty.png", b"")
    png = (folder / "rgb_small.png").read_bytes()
    atomic_write_bytes(tmp_path / "cut.png", png[:60])
    open_page(driver, server)
    upload(driver, [tmp_path / "notes.jpg", tmp_path / "empty.png", tmp_path / "cut.png",
                    folder / "rgb_small.png"])
    result = wait_rows(driver, 1)
    assert [r["name"] for r in result] == ["rgb_small.png"]  # the good one still predicted
    messages = driver.find_element(By.ID, "messages").text
    for name in ("notes.jpg", "empty.png", "cut.png"):
        assert f"{name}: not a decodable image" in messages, messages
    assert driver.find_element(By.ID, "messages").is_displayed()


@pytest.mark.parametrize("model, problem", [
    ("absent.onnx", "could not fetch the model absent.onnx: HTTP 404"),
    ("README.md", "README.md is not a usable pose model"),
    ("truncated.onnx", "truncated.onnx is not a usable pose model"),
])
def test_broken_model_shows_a_message(driver, server, site, model, problem):
    from selenium.webdriver.common.by import By

    data = (site / "model.onnx").read_bytes()
    atomic_write_bytes(site / "truncated.onnx", data[: len(data) // 2])
    open_page(driver, f"{server}?model={model}", expect="error")
    assert problem in driver.find_element(By.ID, "messages").text
    assert driver.find_element(By.ID, "file-input").get_attribute("disabled")


def test_webcam_frame_is_predicted(driver, server, site):
    from selenium.webdriver.common.by import By

    open_page(driver, server)
    driver.find_element(By.ID, "webcam-button").click()
    [row] = wait_rows(driver, 1)
    assert row["name"].startswith("webcam-") and row["state"] == "done", \
        driver.find_element(By.ID, "messages").text
    frame_bytes = base64.b64decode(driver.execute_script("return window.poseApp.imageRgb(0)"))
    width, height = driver.execute_script(
        "const i = window.poseApp.state.entries[0].image; return [i.width, i.height]")
    frame = np.frombuffer(frame_bytes, np.uint8).reshape(height, width, 3)
    [expected] = PoseEstimator(site / "model.onnx").predict(frame)
    difference = angle_difference_deg(page_angles([row])[0], python_angles([expected])[0])
    assert difference.max() <= ANGLE_TOLERANCE_DEG


def test_nothing_is_fetched_from_outside(driver, server, images):
    folder, _ = images
    driver.get_log("performance")  # drop what earlier tests logged
    open_page(driver, server)
    upload(driver, [folder / "rgb_small.png"])
    wait_rows(driver, 1)
    urls = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
    assert any(url.endswith("ort-wasm-simd-threaded.wasm") for url in urls), urls
    outside = [url for url in urls if not url.startswith((server, "blob:", "data:"))]
    assert not outside, outside


def test_plain_http_server_runs_it_on_one_thread(driver, site, images):
    """`python -m http.server` (no cross-origin isolation): the page works, on one thread."""
    folder, _ = images
    plain = Server([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"], site,
                   r"port (\d+)")
    try:
        open_page(driver, plain.url)
        assert "WASM, 1 thread." in driver.find_element("id", "status").text
        upload(driver, [folder / "rgb_wide.png"])
        [row] = wait_rows(driver, 1)
        [expected] = PoseEstimator(site / "model.onnx").predict(folder / "rgb_wide.png")
        assert angle_difference_deg(page_angles([row])[0],
                                    python_angles([expected])[0]).max() <= ANGLE_TOLERANCE_DEG
    finally:
        plain.close()


def test_a_box_drawn_with_the_mouse_is_used(driver, server, site, images):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    folder, _ = images
    open_page(driver, server)
    upload(driver, [folder / "rgb_wide.png"])  # 200 x 120, shown at 1:1
    wait_rows(driver, 1)
    canvas = driver.find_element(By.CSS_SELECTOR, 'figure[data-name="rgb_wide.png"] canvas')
    # Offsets are from the canvas centre (100, 60): drag from (40, 30) to (150, 100).
    ActionChains(driver).move_to_element_with_offset(canvas, -60, -30).click_and_hold() \
        .move_by_offset(55, 35).move_by_offset(55, 35).release().perform()
    WebDriverWait(driver, 45).until(lambda d: rows(d)[0]["state"] == "done" and rows(d)[0]["box"])
    [row] = rows(driver)
    box = [float(v) for v in row["box"].split(",")]  # layout may put the canvas at x.78 px
    assert np.abs(np.subtract(box, (40, 30, 150, 100))).max() <= 1, box
    assert driver.find_element(By.CSS_SELECTOR, ".box-input").get_attribute("value") == row["box"]
    [expected] = PoseEstimator(site / "model.onnx").predict(folder / "rgb_wide.png", boxes=box)
    assert angle_difference_deg(page_angles([row])[0],
                                python_angles([expected])[0]).max() <= ANGLE_TOLERANCE_DEG
    driver.find_element(By.XPATH, "//button[text()='whole image']").click()  # back to no box
    [row] = wait_rows(driver, 1, {"rgb_wide.png": ""})
    [whole] = PoseEstimator(site / "model.onnx").predict(folder / "rgb_wide.png")
    assert angle_difference_deg(page_angles([row])[0],
                                python_angles([whole])[0]).max() <= ANGLE_TOLERANCE_DEG


def test_dropped_files_are_predicted(driver, server, images):
    folder, _ = images
    open_page(driver, server)
    data = base64.b64encode((folder / "gray.png").read_bytes()).decode()
    driver.execute_script("""
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
        document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
    """, data)
    [row] = wait_rows(driver, 1)
    assert row["name"] == "dropped.png" and row["state"] == "done"
