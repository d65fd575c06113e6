"""The label-efficiency study: which model makes the most of few pose labels?

Every (variant, label fraction, seed) of the grid trains one run for the same training length
(`train --time-budget M`, or a fixed step count for tests) on the same grouped dataset with
`TrainConfig.label_fraction` (posenet_mlvae.training.labels), then its last.pt (not best.pt:
picking a checkpoint by validation MedErr would spend the val split's labels) is scored on the
unseen test instances and, given a PASCAL3D+-format tree, on its test objects by the sim2real
path. Each run's result is written to RUN/label_study.json as it finishes and reused when the
study is started again, so an interrupted study continues where it stopped.

The table gives, per (variant, fraction), the mean over seeds and the spread (max - min).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from data_tools.atomic_write import atomic_write_json, atomic_write_text
from eval.metrics import over_seeds

DEFAULT_VARIANTS = ("mlvae", "vae", "direct")
DEFAULT_FRACTIONS = (0.01, 0.1, 1.0)
RESULT_FILE = "label_study.json"
DOMAINS = ("renders", "photos")
VALIDATE_EVERY = 250


@dataclass(frozen=True)
class StudyConfig:
    """The grid and each run's length: `minutes` of training, or `steps` when > 0."""

    data: str
    out: str
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    seeds: int = 2
    minutes: float = 3.0
    steps: int = 0
    pascal_root: str = ""
    category: str = "car"
    device: str = "cpu"
    workers: int = 1

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"--seeds {self.seeds} must be >= 1")
        if self.steps <= 0 and self.minutes <= 0:
            raise ValueError("give each run a length: --minutes M (> 0) or --steps N")
        bad = [f for f in self.fractions if not 0.0 < f <= 1.0]
        if bad:
            raise ValueError(f"--fractions {bad}: each must be in (0, 1]")


def run_name(variant: str, fraction: float, seed: int) -> str:
    return f"{variant}-labels{fraction:g}-seed{seed}"


def run_grid(config: StudyConfig) -> list[tuple[str, float, int]]:
    return [(v, f, s) for v in config.variants for f in config.fractions for s in range(config.seeds)]


def train_and_score(config: StudyConfig, variant: str, fraction: float, seed: int,
                    say: Callable[[str], None] = print) -> dict[str, Any]:
    """One run of the grid: train, score last.pt; the result dict (also written to RUN/label_study.json)."""
    from posenet_mlvae.config import DataConfig, ModelConfig, TrainConfig
    from posenet_mlvae.evaluation.evaluate import EvalConfig, evaluate_checkpoint
    from posenet_mlvae.training.train import fit

    run = Path(config.out) / "runs" / run_name(variant, fraction, seed)
    length = {"steps": config.steps} if config.steps > 0 else {"time_budget_min": config.minutes}
    # Few labelled groups make short epochs: validate no more often than every VALIDATE_EVERY steps.
    train_config = replace(TrainConfig(), seed=seed, label_fraction=fraction, validate_every_steps=VALIDATE_EVERY,
                           **length)
    summary = fit(ModelConfig(variant=variant), train_config, DataConfig(data_dirs=(config.data,)), run,
                  device=config.device, progress=False)
    if summary["status"] != "done":
        raise ValueError(f"{run}: training ended with status {summary['status']!r}")
    checkpoint = run / "last.pt"
    metrics = evaluate_checkpoint(checkpoint, config.data, run / "eval-test",
                                  EvalConfig(split="test", device=config.device, progress=False))
    result: dict[str, Any] = {
        "variant": variant, "fraction": fraction, "seed": seed, "steps": summary["step"],
        "train_s": summary["elapsed_s"], "checkpoint": str(checkpoint),
        "renders": {k: metrics[k] for k in ("med_err_deg", "acc_pi_6", "acc_pi_18", "n")}}
    if config.pascal_root:
        from posenet_mlvae.evaluation.sim2real import score_tree

        photos = score_tree(checkpoint, config.pascal_root, Path(config.out) / "photos", category=config.category,
                            device=config.device, workers=config.workers, report=lambda _: None)
        result["photos"] = {k: photos[k] for k in ("med_err_deg", "acc_pi_6", "acc_pi_18", "n", "flips")}
    atomic_write_json(run / RESULT_FILE, result)
    say(f"{run.name}: {summary['step']} steps; renders {result['renders']['med_err_deg']:.2f} deg"
        + (f", photos {result['photos']['med_err_deg']:.2f} deg" if "photos" in result else ""))
    return result


def run_study(config: StudyConfig, say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every run of the grid (finished ones read back from their RUN/label_study.json)."""
    results = []
    grid = run_grid(config)
    for number, (variant, fraction, seed) in enumerate(grid, 1):
        saved = Path(config.out) / "runs" / run_name(variant, fraction, seed) / RESULT_FILE
        if saved.is_file():
            results.append(json.loads(saved.read_text()))
            say(f"[{number}/{len(grid)}] {saved.parent.name}: done earlier, reused")
            continue
        say(f"[{number}/{len(grid)}] {run_name(variant, fraction, seed)}: training "
            + (f"{config.steps} steps" if config.steps > 0 else f"{config.minutes:g} min"))
        results.append(train_and_score(config, variant, fraction, seed, say))
    return results


def aggregate(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (variant, fraction): mean, min and max over seeds of MedErr and Acc@pi/6 per domain."""
    rows = []
    keys = sorted({(r["variant"], r["fraction"]) for r in results},
                  key=lambda k: (DEFAULT_VARIANTS.index(k[0]) if k[0] in DEFAULT_VARIANTS else 9, k[1]))
    for variant, fraction in keys:
        runs = [r for r in results if (r["variant"], r["fraction"]) == (variant, fraction)]
        row: dict[str, Any] = {"variant": variant, "fraction": fraction, "seeds": len(runs),
                               "steps": float(np.mean([r["steps"] for r in runs]))}
        for domain in DOMAINS:
            if all(domain in r for r in runs):
                for metric in ("med_err_deg", "acc_pi_6"):
                    row[f"{domain}_{metric}"] = over_seeds([r[domain][metric] for r in runs])
        rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: one row per (variant, fraction), 'mean (spread)' over seeds per domain."""
    domains = [d for d in DOMAINS if rows and f"{d}_med_err_deg" in rows[0]]
    header = ["variant", "labels", "seeds", "steps"] + [
        f"{d} {m}" for d in domains for m in ("MedErr deg", "Acc@pi/6 %")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["variant"], f"{100 * row['fraction']:g} %", str(row["seeds"]), f"{row['steps']:.0f}"]
        for domain in domains:
            med, acc = row[f"{domain}_med_err_deg"], row[f"{domain}_acc_pi_6"]
            cells.append(f"{med['mean']:.2f} ({med['max'] - med['min']:.2f})")
            cells.append(f"{100 * acc['mean']:.1f} ({100 * (acc['max'] - acc['min']):.1f})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(config: StudyConfig, results: Sequence[dict[str, Any]]) -> dict[str, Path]:
    """OUT/labels.json (every run and the table's rows), OUT/labels.md and the plot OUT/labels.png."""
    from eval.plots import label_efficiency_plot

    out = Path(config.out)
    rows = aggregate(results)
    table = format_table(rows)
    paths = {"json": out / "labels.json", "table": out / "labels.md", "plot": out / "labels.png"}
    atomic_write_json(paths["json"], {"config": config.__dict__, "runs": list(results), "rows": rows})
    length = f"{config.steps} steps" if config.steps > 0 else f"{config.minutes:g} min of training"
    atomic_write_text(paths["table"], f"Label-efficiency study on {config.data} ({length} per run; "
                                      f"mean (max - min) over {config.seeds} seed(s)):\n\n{table}\n")
    curves = {domain: {row["variant"]: [] for row in rows} for domain in DOMAINS
              if rows and f"{domain}_med_err_deg" in rows[0]}
    for domain, by_variant in curves.items():
        for row in rows:
            stat = row[f"{domain}_med_err_deg"]
            by_variant[row["variant"]].append((row["fraction"], stat["mean"], stat["min"], stat["max"]))
    label_efficiency_plot(curves, paths["plot"], title=f"{length} per run, {config.seeds} seed(s)")
    return paths
