"""The report (eval.report): the numbers it prints, the images it picks and the curves it draws."""

import re

import numpy as np
import pytest

from eval import plots
from eval.confidence import confidence_summary, risk_coverage
from eval.metrics import summarize, viewpoint_errors_deg
from eval.report import FIGURE_FILES, SwapGridImages, TraversalImages, worst_indices, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def case():
    rng = np.random.default_rng(0)
    n = 60
    true = np.stack([rng.uniform(0, 360, n), rng.uniform(0, 30, n), rng.uniform(-5, 5, n)], axis=1)
    pred = true + rng.normal(0, 5, size=(n, 3))
    pred[:5, 0] += 180.0  # a few front/rear flips
    errors = viewpoint_errors_deg(*pred.T, *true.T)
    confidence = np.clip(1.0 - errors / 180.0 + rng.normal(0, 0.05, n), 0, 1)  # low on the flips
    categories = np.where(np.arange(n) % 2 == 0, "car", "chair")
    metrics = summarize(errors, categories)
    metrics["confidence"] = confidence_summary(errors, confidence)
    images = rng.integers(0, 255, size=(n, 64, 64, 3), dtype=np.uint8)
    return true, pred, errors, confidence, categories, metrics, images


@pytest.fixture()
def drawn(monkeypatch):
    """Capture each figure (by file name) before it is saved, to read back what it plots."""
    figures = {}
    save = plots._save

    def capture(fig, path):
        figures[path.name] = [([line.get_xdata(), line.get_ydata()]) for ax in fig.axes for line in ax.lines]
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", capture)
    return figures


def _table_row(text: str, name: str) -> list[float]:
    row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
    return [float(cell) for cell in row.strip("|").split("|")[1:]]


def test_report_prints_the_metrics_and_confidence_it_was_given(tmp_path, case):
    true, pred, errors, confidence, categories, metrics, _ = case
    text = write_report(tmp_path, metrics, errors, true, pred, confidence=confidence).read_text()
    car = errors[categories == "car"]
    assert _table_row(text, "all") == pytest.approx(
        [60, np.median(errors), np.mean(errors <= 30), np.mean(errors <= 10)], abs=6e-3)
    assert _table_row(text, "car") == pytest.approx([30, np.median(car), np.mean(car <= 30), np.mean(car <= 10)],
                                                    abs=6e-3)
    area = re.search(r"errors > 30 deg: ([0-9.]+) \((\d+) such errors", text)
    assert float(area.group(1)) == pytest.approx(metrics["confidence"]["auroc_err_gt_30"], abs=1e-3)
    assert int(area.group(2)) == int((errors > 30).sum())
    order = np.argsort(-confidence, kind="stable")
    assert _table_row(text, "50 %") == pytest.approx([30, np.median(errors[order[:30]]),
                                                      np.mean(errors[order[:30]] <= 30)], abs=6e-3)


def test_gallery_shows_the_worst_predictions(tmp_path, case):
    true, pred, errors, _, categories, metrics, images = case
    asked = []

    def lookup(index):
        asked.append(np.asarray(index).copy())
        return images[index]

    write_report(tmp_path, metrics, errors, true, pred, image_lookup=lookup, captions=categories, gallery_count=7)
    assert len(asked) == 1
    assert sorted(asked[0].tolist()) == sorted(np.argsort(errors)[-7:].tolist())
    assert errors[asked[0]].tolist() == sorted(errors[asked[0]].tolist(), reverse=True)  # worst first
    assert "(worst_predictions.png)" in (tmp_path / "report.md").read_text()


def test_curves_plot_the_hand_computed_values(tmp_path, case, drawn):
    true, pred, errors, confidence, _, metrics, _ = case
    write_report(tmp_path, metrics, errors, true, pred, confidence=confidence,
                 other_methods={"direct": errors * 1.5})
    coverage, med_err = drawn[FIGURE_FILES["risk_coverage"]][0]
    order = np.argsort(-confidence, kind="stable")
    expected = [np.median(errors[order[: int(round(c * 60))]]) for c in coverage]
    np.testing.assert_allclose(med_err, expected)
    assert coverage[-1] == 1.0 and len(coverage) == 60
    np.testing.assert_allclose(drawn[FIGURE_FILES["risk_coverage"]][1][1], np.median(errors))  # "all" line
    np.testing.assert_allclose(med_err, risk_coverage(errors, confidence, coverage).med_err_deg)
    (x, model), (_, direct) = drawn[FIGURE_FILES["cumulative_error"]][:2]
    np.testing.assert_allclose(model, [np.mean(errors <= t) for t in x])
    np.testing.assert_allclose(direct, [np.mean(1.5 * errors <= t) for t in x])
    assert model[np.searchsorted(x, 180.0)] == 1.0


def test_every_figure_is_linked_and_optional_ones_are_skipped(tmp_path, case):
    true, pred, errors, confidence, categories, metrics, images = case
    tiles = np.random.default_rng(1).integers(0, 255, size=(4, 5, 64, 64, 3), dtype=np.uint8)
    full = tmp_path / "full"
    text = write_report(full, metrics, errors, true, pred, image_lookup=lambda idx: images[idx],
                        captions=categories, swap=SwapGridImages(tiles, tiles[:, 0], tiles[0]),
                        traversal=TraversalImages(tiles, np.linspace(-2, 2, 5), (0, 3, 5, 7)),
                        confidence=confidence).read_text()
    for name, file_name in FIGURE_FILES.items():
        assert (full / file_name).read_bytes()[:8] == PNG_SIGNATURE, name
        assert f"({file_name})" in text, name
    assert not list(full.glob(".*"))  # no temporary files left behind
    bare = tmp_path / "bare"
    metrics = {k: v for k, v in metrics.items() if k != "confidence"}
    text = write_report(bare, metrics, errors, true, pred).read_text()
    assert {p.name for p in bare.iterdir()} == {"report.md", FIGURE_FILES["cumulative_error"],
                                                  FIGURE_FILES["error_histogram"], FIGURE_FILES["azimuth_polar"]}
    assert "## Confidence" not in text and "risk_coverage" not in text


def test_diagnostics_are_printed_when_present(tmp_path, case):
    true, pred, errors, _, _, metrics, _ = case
    metrics = dict(metrics, diagnostics={
        "probes": {"obs": {"kind": "ridge", "med_err_deg": 5.0, "acc_pi_6": 0.9, "chance": {"med_err_deg": 90.0}}},
        "retrieval": {"1": {"top1": 0.5, "chance": 0.1, "n_instances": 10}},
    })
    text = write_report(tmp_path, metrics, errors, true, pred).read_text()
    assert "| obs | ridge | 5.0 | 0.900 | 90.0 |" in text
    assert "| 1 | 0.5 | 0.1 | 10 |" in text


def test_worst_indices_are_largest_first():
    assert worst_indices(np.array([3.0, 170.0, 20.0, 170.0, 1.0]), 3).tolist() == [1, 3, 2]
