"""The evaluation runner: run a checkpoint over a split of a grouped dataset and score it with `eval`.

    model, checkpoint = load_checkpoint("runs/demo/best.pt")
    predictions = predict(model, GroupedDataset("data/cars", split="test"))
    metrics = pose_metrics(predictions)        # MedErr, Acc@pi/6, Acc@pi/18, per category, confidence

Every image is its own group for pose (what an app sees: one photo); the latent means and
log-variances are kept for the diagnostics. `Predictions` of disjoint parts concatenate, and the
metrics of the concatenation are those of one pooled pass (tests/test_eval_runner.py). The pose
comes from `posenet_mlvae.inference.encode_pose`, the one decode shared with validation and the
exported ONNX module. `evaluate_split` does the whole job for the CLI (`evaluate_checkpoint`
returns just its metrics): metrics.json (+ predictions.csv), optional diagnostics (`eval.probes`,
`eval.retrieval`, `eval.disentanglement`) and the report (`eval.report`, decoded swap grid and
traversals from `posenet_mlvae.evaluation.evaluate_figures`). A dataset cropped by another rule than the
model's training data (`CropRule` in the manifest and the checkpoint) gets a one-line note.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from data_tools.atomic_write import atomic_write_bytes, atomic_write_json
from data_tools.dataset import GroupedDataset
from data_tools.image.preprocess import CropRule, to_model_input
from eval.confidence import confidence_summary
from eval.metrics import VIEW_CONDITIONS, summarize, view_conditions, viewpoint_errors_deg
from eval.probes import PROBE_KINDS
from posenet_mlvae.inference import encode_latents, encode_pose, pose_angles, set_zoom_average


@dataclass(frozen=True)
class EvalConfig:
    """What `evaluate_checkpoint` computes. Built from the CLI flags at the boundary."""

    split: str = "test"
    batch_size: int = 256
    device: str = "cpu"
    diagnostics: bool = False
    report: bool = False
    train_split: str = "train"  # latents the probes are fitted on
    max_probe_images: int = 20_000  # train images for the probes (a deterministic subset)
    probe: str = "ridge"  # "ridge" (linear read-out) or "mlp" (one hidden layer), eval.probes
    seed: int = 0
    progress: bool = True
    onnx_model: str = ""  # with diagnostics: also retrieval through this exported model (the app's path)
    zoom_average: float | None = None  # test-time zoom averaging (ModelConfig.zoom_average); None = the model's

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"EvalConfig.batch_size={self.batch_size} must be >= 1")
        if self.probe not in PROBE_KINDS:
            raise ValueError(f"EvalConfig.probe={self.probe!r}; choose one of {PROBE_KINDS}")
        if self.max_probe_images < 2:
            raise ValueError(f"EvalConfig.max_probe_images={self.max_probe_images} must be >= 2")


@dataclass
class Predictions:
    """Per-image results, row i = dataset row `row[i]`. Angles in degrees; latents are posterior means."""

    row: np.ndarray  # (N,) positions in the (filtered) GroupedDataset
    group: np.ndarray  # (N,) instance ids
    category: np.ndarray  # (N,) str
    true: np.ndarray  # (N, 3) azimuth, elevation, theta; NaN when has_pose is 0
    has_pose: np.ndarray  # (N,) bool
    pred: np.ndarray  # (N, 3)
    confidence: np.ndarray  # (N,)
    mu_obs: np.ndarray  # (N, D_obs)
    logvar_obs: np.ndarray  # (N, D_obs)
    mu_content: Optional[np.ndarray]  # (N, D_c); None for the "direct" variant
    logvar_content: Optional[np.ndarray]

    def __len__(self) -> int:
        return len(self.row)

    @staticmethod
    def concat(parts: list["Predictions"]) -> "Predictions":
        """Rows of all parts in order (the parts come from the same model)."""
        joined = {}
        for f in fields(Predictions):
            values = [getattr(p, f.name) for p in parts]
            joined[f.name] = None if values[0] is None else np.concatenate(values, axis=0)
        return Predictions(**joined)

    def errors_deg(self) -> np.ndarray:
        """(N,) geodesic errors in degrees; NaN for images without a pose label."""
        errors = np.full(len(self), np.nan)
        rows = self.has_pose
        if rows.any():
            errors[rows] = viewpoint_errors_deg(*self.pred[rows].T, *self.true[rows].T)
        return errors


@torch.no_grad()
def predict(model: torch.nn.Module, dataset: GroupedDataset, rows: np.ndarray | None = None,
            batch_size: int = 256, device: str = "cpu", progress: bool = False,
            desc: str = "evaluate", with_pose: bool = True,
            transform: Callable[[np.ndarray], np.ndarray] | None = None) -> Predictions:
    """Run `model` (a PoseMLVAE in eval mode) over `rows` of `dataset` (default all), batched.

    with_pose=False: the latents only (for the probes), without the pose's test-time views;
    `pred` and `confidence` are then NaN. transform: applied to each batch of uint8 RGB images
    (B, H, W, 3) before the model sees it (e.g. a colour test of data_tools.image.colour_tests)."""
    from tqdm import tqdm

    rows = np.arange(len(dataset)) if rows is None else np.asarray(rows, dtype=np.int64)
    model.eval()
    generative = model.config.variant != "direct"
    names = ("pred", "confidence", "mu_obs", "logvar_obs") + (("mu_content", "logvar_content") if generative else ())
    widths = {"pred": (3,), "confidence": (), "mu_obs": (model.config.obs_dim,),
              "logvar_obs": (model.config.obs_dim,), "mu_content": (model.config.content_dim,),
              "logvar_content": (model.config.content_dim,)}
    batches: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in tqdm(range(0, len(rows), batch_size), desc=desc, unit="batch", disable=not progress):
        batch_rows = rows[start : start + batch_size]
        pixels = dataset.images(batch_rows)
        pixels = pixels if transform is None else transform(pixels)
        images = torch.from_numpy(to_model_input(pixels)).to(device)  # (B, 3, H, W)
        if with_pose:
            encoded = encode_pose(model, images)
            pred, confidence, latents = pose_angles(encoded.pose), encoded.pose.confidence, encoded[1:]
        else:
            latents = encode_latents(model, images)
            pred, confidence = torch.full((len(images), 3), float("nan")), torch.full((len(images),), float("nan"))
        values = {"pred": pred, "confidence": confidence,
                  **dict(zip(("mu_obs", "logvar_obs", "mu_content", "logvar_content"), latents))}
        for name in names:
            batches[name].append(values[name].double().cpu().numpy())
    joined = {name: np.concatenate(batches[name]) if batches[name] else np.zeros((0, *widths[name]))
              for name in names}
    records = dataset.records
    true = np.stack([records[k][rows] for k in ("azimuth", "elevation", "theta")], 1).astype(np.float64)
    has_pose = (records["has_pose"][rows] == 1) & np.isfinite(true).all(axis=1)
    return Predictions(
        row=rows, group=records["group"][rows].astype(np.int64), category=records["category"][rows].astype(str),
        true=true, has_pose=has_pose, pred=joined["pred"], confidence=joined["confidence"],
        mu_obs=joined["mu_obs"], logvar_obs=joined["logvar_obs"],
        mu_content=joined.get("mu_content"), logvar_content=joined.get("logvar_content"),
    )


def pose_metrics(predictions: Predictions) -> dict[str, Any]:
    """`eval.metrics.summarize` of the labelled images, by category, plus `n_unlabelled` and
    `confidence` (`eval.confidence.confidence_summary`: AUROC of the confidence for errors > 30 deg
    and the risk-coverage table) when any image is labelled."""
    errors = predictions.errors_deg()
    labelled = predictions.has_pose
    result = summarize(errors[labelled], predictions.category[labelled])
    result["n_unlabelled"] = int((~labelled).sum())
    if labelled.any():
        result["confidence"] = confidence_summary(errors[labelled], predictions.confidence[labelled])
    return result


def condition_metrics(predictions: Predictions, records: dict[str, np.ndarray]) -> dict[str, Any]:
    """`summarize` of the labelled images by view condition (clean, small, occluded, truncated,
    both: `eval.metrics.view_conditions`), in that order; empty when the records do not say (an
    image folder). Renders are occluded, truncated and drawn small on purpose, and PASCAL3D+'s
    usual protocol scores the clean objects only, so this is the like-for-like figure."""
    if "occluded" not in records or "truncated" not in records:
        return {}
    labelled = predictions.has_pose
    rows = predictions.row[labelled]
    shrink = records["shrink"][rows] if "shrink" in records else None  # renders made before round 34: none
    try:
        conditions = view_conditions(records["occluded"][rows], records["truncated"][rows], shrink)
    except ValueError:  # a user's records with text in these columns: nothing to tell
        return {}
    blocks = summarize(predictions.errors_deg()[labelled], conditions)["per_category"]
    return {condition: blocks[condition] for condition in VIEW_CONDITIONS if condition in blocks}


def crop_rule_note(data_dir: str | Path, manifest: dict[str, Any], checkpoint: dict[str, Any]) -> str | None:
    """One sentence when the dataset was cropped by another rule than the model's training data.

    Reads `manifest["crop_rule"]` and `checkpoint["crop_rule"]` (`CropRule.to_json`); None when the
    rules are equal or either is unknown (data or checkpoints made before rules were recorded).
    """
    data_rule = CropRule.from_json(manifest.get("crop_rule"))
    model_rule = CropRule.from_json(checkpoint.get("crop_rule"))
    if data_rule is None or model_rule is None or data_rule == model_rule:
        return None
    return (f"{data_dir} was cropped with {data_rule.describe()} but the model was trained on "
            f"{model_rule.describe()}; scores may suffer")


def is_grid_set(dataset: GroupedDataset) -> bool:
    """True when every group of `dataset` was rendered at the same set of >= 2 x 2 (a, e) cells.

    A manifest that says so (`posenet-mlvae render --distribution grid` stores
    `"config": {"distribution": "grid", ...}`; a top-level `"distribution": "grid"` also counts) is
    accepted as is; otherwise the structure is checked from the records.
    """
    build_config = dataset.manifest.get("config")
    build_config = build_config if isinstance(build_config, dict) else {}
    if "grid" in (dataset.manifest.get("distribution"), build_config.get("distribution")):
        return True
    records = dataset.records
    if len(dataset) == 0 or not (records["has_pose"] == 1).all():
        return False
    cells = np.round(np.stack([records["azimuth"], records["elevation"]], 1), 2)
    groups = np.unique(records["group"])
    azimuths, elevations = np.unique(cells[:, 0]), np.unique(cells[:, 1])
    if len(groups) < 2 or len(azimuths) < 2 or len(elevations) < 2:
        return False
    first = {tuple(c) for c in cells[records["group"] == groups[0]]}
    if len(first) != len(azimuths) * len(elevations):
        return False
    return all({tuple(c) for c in cells[records["group"] == g]} == first for g in groups[1:])


def probe_subset(dataset: GroupedDataset, limit: int, seed: int) -> np.ndarray:
    """Up to `limit` labelled rows of `dataset`, a deterministic random subset in dataset order."""
    labelled = np.flatnonzero(dataset.records["has_pose"] == 1)
    if len(labelled) > limit:
        labelled = np.sort(np.random.default_rng(seed).choice(labelled, size=limit, replace=False))
    return labelled


def diagnostics(test: Predictions, train: Predictions | None, test_dataset: GroupedDataset,
                probe: str = "ridge", seed: int = 0) -> dict[str, Any]:
    """Probes (train-instance latents -> unseen ones), retrieval and, on grid sets, FactorVAE/BetaVAE/FoV."""
    from eval.disentanglement import grid_scores
    from eval.probes import pose_probe
    from eval.retrieval import retrieval_top1

    result: dict[str, Any] = {}
    if train is not None and len(train) >= 2 and test.has_pose.any():
        latents = {"obs": (train.mu_obs, test.mu_obs)}
        if test.mu_content is not None:
            latents["group"] = (train.mu_content, test.mu_content)
        result["probes"] = {
            name: pose_probe(train_latents, train.true, test_latents, test.true, kind=probe,
                             test_categories=test.category, seed=seed)
            for name, (train_latents, test_latents) in latents.items()
        }
    else:
        result["probes_skipped"] = "needs labelled images in both the train and the evaluated split"
    if test.mu_content is not None:
        result["retrieval"] = retrieval_top1(test.mu_content, test.group, logvar=test.logvar_content, seed=seed)
        result["retrieval_enrolled"] = retrieval_top1(test.mu_content, test.group, logvar=test.logvar_content,
                                                      seed=seed, gallery="enrolled")
    if is_grid_set(test_dataset):
        latents = test.mu_obs if test.mu_content is None else np.hstack([test.mu_obs, test.mu_content])
        result["grid_scores"] = grid_scores(latents, test.true[:, 0], test.true[:, 1], test.group, seed=seed)
        result["grid_scores"]["latent"] = "concat(mu_obs, mu_content)" if test.mu_content is not None else "mu_obs"
    return result


def predictions_csv(predictions: Predictions, dataset: GroupedDataset) -> bytes:
    """One row per image: dataset index, group, category, true and predicted angles, error, confidence."""
    errors = predictions.errors_deg()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["index", "group", "category", "azimuth", "elevation", "theta", "pred_azimuth",
                     "pred_elevation", "pred_theta", "error_deg", "confidence"])
    index = dataset.records["index"][predictions.row]
    for i in range(len(predictions)):
        writer.writerow([int(index[i]), int(predictions.group[i]), predictions.category[i],
                         *(f"{v:.4f}" for v in predictions.true[i]), *(f"{v:.4f}" for v in predictions.pred[i]),
                         f"{errors[i]:.4f}", f"{predictions.confidence[i]:.4f}"])
    return buffer.getvalue().encode()


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate_split` computed: the metrics.json dict and the per-image predictions."""

    metrics: dict[str, Any]
    predictions: Predictions
    dataset: GroupedDataset  # the scored split


def evaluate_checkpoint(checkpoint_path: str | Path, data_dir: str | Path, out_dir: str | Path,
                        config: EvalConfig) -> dict[str, Any]:
    """`evaluate_split(...).metrics`: the metrics.json dict."""
    return evaluate_split(checkpoint_path, data_dir, out_dir, config).metrics


def evaluate_split(checkpoint_path: str | Path, data_dir: str | Path, out_dir: str | Path,
                   config: EvalConfig) -> Evaluation:
    """Load, predict, score; write metrics.json and predictions.csv (and the report) into `out_dir`.

    metrics["crop_rule"] holds the dataset's and the model's crop rules and `note`, the
    `crop_rule_note` sentence (None when they agree or one is unknown). Raises ValueError when
    the split holds no image with a pose label (nothing to score).
    """
    from posenet_mlvae.training.checkpoint import load_checkpoint

    out_dir = Path(out_dir)
    model, checkpoint = load_checkpoint(checkpoint_path, map_location=config.device)
    set_zoom_average(model, config.zoom_average)
    dataset = GroupedDataset(data_dir, split=config.split)
    if len(dataset) == 0:
        raise ValueError(f"{data_dir}: split {config.split!r} has no images; counts: {dataset.manifest.get('counts')}")
    test = predict(model, dataset, batch_size=config.batch_size, device=config.device,
                   progress=config.progress, desc=f"evaluate {config.split}")
    if not test.has_pose.any():
        raise ValueError(f"{data_dir}: split {config.split!r} has no image with a pose label (has_pose=1)")
    metrics = pose_metrics(test)
    metrics["per_condition"] = condition_metrics(test, dataset.records)
    metrics.update({"checkpoint": str(checkpoint_path), "data": str(data_dir), "split": config.split,
                    "variant": model.config.variant, "step": int(checkpoint.get("step", 0)),
                    "zoom_average": model.config.zoom_average,
                    "crop_rule": {"data": dataset.manifest.get("crop_rule"), "model": checkpoint.get("crop_rule"),
                                  "note": crop_rule_note(data_dir, dataset.manifest, checkpoint)}})
    if config.diagnostics:
        train_dataset = GroupedDataset(data_dir, split=config.train_split)
        train = None
        if len(train_dataset):
            rows = probe_subset(train_dataset, config.max_probe_images, config.seed)
            train = predict(model, train_dataset, rows, batch_size=config.batch_size, device=config.device,
                            progress=config.progress, desc=f"latents {config.train_split}", with_pose=False)
        metrics["diagnostics"] = diagnostics(test, train, dataset, probe=config.probe, seed=config.seed)
        if config.onnx_model and test.mu_content is not None:
            from posenet_mlvae.evaluation.runtime_retrieval import runtime_retrieval

            metrics["diagnostics"]["retrieval_runtime"] = runtime_retrieval(config.onnx_model, dataset, config.seed,
                                                                            config.batch_size)
        if config.train_split == config.split:
            metrics["diagnostics"]["warning"] = (
                f"probes fitted and scored on the same split {config.split!r}: instances are not unseen")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "metrics.json", metrics)
    atomic_write_bytes(out_dir / "predictions.csv", predictions_csv(test, dataset))
    if config.report:
        from posenet_mlvae.evaluation.evaluate_figures import write_model_report

        write_model_report(model, dataset, test, metrics, out_dir, device=config.device, seed=config.seed)
    return Evaluation(metrics, test, dataset)
