"""The report (eval.report): every figure written, non-empty PNGs of the expected pixel size."""

import json

import numpy as np
import pytest

from eval import plots
from eval.metrics import summarize, viewpoint_errors_deg
from eval.report import FIGURE_FILES, SwapGridImages, TraversalImages, worst_indices, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path) -> tuple[int, int]:
    """(width, height) from the PNG IHDR chunk, read without any image library."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture()
def case():
    rng = np.random.default_rng(0)
    n = 60
    true = np.stack([rng.uniform(0, 360, n), rng.uniform(0, 30, n), rng.uniform(-5, 5, n)], axis=1)
    pred = true + rng.normal(0, 5, size=(n, 3))
    pred[:5, 0] += 180.0  # a few front/rear flips
    errors = viewpoint_errors_deg(*pred.T, *true.T)
    categories = np.where(np.arange(n) % 2 == 0, "car", "chair")
    metrics = summarize(errors, categories)
    images = rng.integers(0, 255, size=(n, 64, 64, 3), dtype=np.uint8)
    return true, pred, errors, categories, metrics, images


def test_report_writes_every_figure_with_expected_size(tmp_path, case):
    true, pred, errors, categories, metrics, images = case
    tiles = np.random.default_rng(1).integers(0, 255, size=(4, 5, 64, 64, 3), dtype=np.uint8)
    swap = SwapGridImages(tiles, tiles[:, 0], tiles[0])
    traversal = TraversalImages(tiles, np.linspace(-2, 2, 5), (0, 3, 5, 7))
    metrics = dict(metrics, diagnostics={
        "probes": {"obs": {"kind": "ridge", "med_err_deg": 5.0, "acc_pi_6": 0.9, "chance": {"med_err_deg": 90.0}}},
        "retrieval": {"1": {"top1": 0.5, "chance": 0.1, "n_instances": 10}},
    })
    path = write_report(tmp_path, metrics, errors, true, pred, image_lookup=lambda idx: images[idx],
                        captions=categories, other_methods={"direct": errors * 1.5},
                        swap=swap, traversal=traversal)
    text = path.read_text()
    for name, file_name in FIGURE_FILES.items():
        png = tmp_path / file_name
        assert png.stat().st_size > 5000, name
        width, height = plots.FIGURE_SIZES[name]
        assert _png_size(png) == (int(width * plots.DPI), int(height * plots.DPI)), name
        assert f"({file_name})" in text
    assert "| car |" in text and "| mean over categories |" in text
    assert "Identity retrieval" in text and "Pose from latents" in text
    assert not list(tmp_path.glob("*.tmp*")) and not list(tmp_path.glob(".*"))


def test_report_without_optional_inputs_skips_those_figures(tmp_path, case):
    true, pred, errors, _, _, _ = case
    metrics = summarize(errors)
    write_report(tmp_path, metrics, errors, true, pred)
    written = {p.name for p in tmp_path.iterdir()}
    assert written == {"report.md", FIGURE_FILES["cumulative_error"], FIGURE_FILES["error_histogram"],
                       FIGURE_FILES["azimuth_polar"]}
    assert json.loads(json.dumps(metrics))["n"] == len(errors)


def test_worst_indices_are_largest_first():
    assert worst_indices(np.array([3.0, 170.0, 20.0, 170.0, 1.0]), 3).tolist() == [1, 3, 2]
