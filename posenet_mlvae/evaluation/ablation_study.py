"""The appearance ablation: what each factor of the renders buys on photographs (issue 12).

For each seed, the demo's training build (`posenet_mlvae.demo.main_render_config`: its instance
counts, views, size and splits) is rendered once with every appearance factor on and once with
each factor of `factors` off in turn. Each build trains one run for the same number of steps
(the models differ only in their data), whose best.pt is scored three ways:

- on the unseen test instances of its own build (each row its own test, so this column does not
  compare across rows; the clean views are PASCAL3D+'s like-for-like figure);
- on the unseen test instances of the default build (everything on), the column that compares;
- given a PASCAL3D+-format tree, on its test objects by the sim2real path (flips, AUROC).

Each run's result is written to RUN/ablation.json as it finishes and reused when the study is
started again; a factor's build is deleted once its run is scored (unless `keep_data`), the
default build is kept, since every run of its seed is scored on it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from data_tools.atomic_write import atomic_write_json, atomic_write_text
from eval.metrics import over_seeds

RESULT_FILE = "ablation.json"
EVERYTHING_ON = "all"
#: Figures aggregated over seeds: (result block, key, column header, scale and decimals to print).
COLUMNS = (
    ("own", "med_err_deg", "own renders MedErr", 1.0, 2),
    ("own", "clean_med_err_deg", "own clean MedErr", 1.0, 2),
    ("default", "med_err_deg", "default renders MedErr", 1.0, 2),
    ("default", "acc_pi_6", "default renders Acc@pi/6 %", 100.0, 1),
    ("photos", "med_err_deg", "photos MedErr", 1.0, 2),
    ("photos", "acc_pi_6", "photos Acc@pi/6 %", 100.0, 1),
    ("photos", "acc_pi_18", "photos Acc@pi/18 %", 100.0, 1),
    ("photos", "flips", "photos flips", 1.0, 0),
    ("photos", "errors_60_150", "photos 60-150", 1.0, 0),
    ("photos", "auroc_err_gt_30", "photos AUROC", 1.0, 3),
)


@dataclass(frozen=True)
class AblationConfig:
    """The study: which factors, seeds and build, and each run's length in training steps."""

    out: str
    category: str = "car"
    factors: tuple[str, ...] = ()  # empty = every appearance factor (APPEARANCE_FACTORS)
    seeds: tuple[int, ...] = (0,)
    steps: int = 3000
    instances: int | None = None  # training instances; None = the 12-minute demo's
    val_instances: int = 24
    test_instances: int = 72
    views: int = 24
    size: int = 64
    pascal_root: str = ""
    device: str = "cpu"
    workers: int = 1
    keep_data: bool = False

    def __post_init__(self) -> None:
        from data_tools.render.plan import APPEARANCE_FACTORS

        unknown = sorted(set(self.factors) - set(APPEARANCE_FACTORS))
        if unknown:
            raise ValueError(f"--factors {' '.join(unknown)}: unknown; choose from {' '.join(APPEARANCE_FACTORS)}")
        if not self.factors:
            object.__setattr__(self, "factors", tuple(APPEARANCE_FACTORS))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"--seeds {list(self.seeds)}: give one or more distinct seeds")
        if self.steps < 1:
            raise ValueError(f"--steps {self.steps} must be >= 1")
        from posenet_mlvae.demo import main_render_config

        main_render_config(self.demo_config(self.seeds[0]))  # the demo's checks (instances, views, category, tree)

    @property
    def variants(self) -> tuple[str, ...]:
        """Everything on, then each factor off: the study's rows."""
        return (EVERYTHING_ON, *self.factors)

    def demo_config(self, seed: int):
        """The demo's settings whose training build this study renders at `seed`."""
        from posenet_mlvae.demo import DemoConfig

        return DemoConfig(category=self.category, seed=seed, instances=self.instances,
                          val_instances=self.val_instances, test_instances=self.test_instances,
                          views=self.views, size=self.size, pascal_root=self.pascal_root or None)


def variant_name(variant: str) -> str:
    """'all' stays; a factor reads as 'no-<factor>' (the row and folder names)."""
    return variant if variant == EVERYTHING_ON else f"no-{variant}"


def data_dir(config: AblationConfig, variant: str, seed: int) -> Path:
    return Path(config.out) / "data" / f"{config.category}-seed{seed}-{variant_name(variant)}"


def run_dir(config: AblationConfig, variant: str, seed: int) -> Path:
    return Path(config.out) / "runs" / f"{config.category}-seed{seed}-{variant_name(variant)}"


def render(config: AblationConfig, variant: str, seed: int, say: Callable[[str], None] = print) -> Path:
    """Render (or resume) the demo's build at `seed` with `variant`'s factor off; its folder."""
    from data_tools.render.build import build_synthetic
    from posenet_mlvae.demo import main_render_config

    build = main_render_config(config.demo_config(seed))
    if variant != EVERYTHING_ON:
        build = replace(build, appearance_off=(variant,))
    folder = data_dir(config, variant, seed)
    summary = build_synthetic(build, folder, workers=config.workers, report=say)
    if summary["images"]:
        say(f"rendered {folder.name}: {summary['images']} images in {summary['seconds']:.0f} s")
    return folder


def _figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """The study's figures from an evaluation's metrics.json dict."""
    clean = metrics.get("per_condition", {}).get("clean", {})
    return {"med_err_deg": metrics["med_err_deg"], "acc_pi_6": metrics["acc_pi_6"],
            "acc_pi_18": metrics["acc_pi_18"], "n": metrics["n"],
            "clean_med_err_deg": clean.get("med_err_deg")}


def train_and_score(config: AblationConfig, variant: str, seed: int, default_data: Path,
                    say: Callable[[str], None] = print) -> dict[str, Any]:
    """One run: render its build (`default_data` for everything on), train `steps` steps, score
    best.pt there and on `default_data` (the result is also written to RUN/ablation.json)."""
    from posenet_mlvae.config import DataConfig, ModelConfig, TrainConfig
    from posenet_mlvae.evaluation.evaluate import EvalConfig, evaluate_checkpoint
    from posenet_mlvae.training.train import fit

    data = default_data if variant == EVERYTHING_ON else render(config, variant, seed, say)
    run = run_dir(config, variant, seed)
    # What `posenet-mlvae train --data DATA --steps N --seed S` trains.
    summary = fit(ModelConfig(), replace(TrainConfig(), steps=config.steps, seed=seed),
                  DataConfig(data_dirs=(str(data),)), run, device=config.device, progress=False)
    if summary["status"] != "done":
        raise ValueError(f"{run}: training ended with status {summary['status']!r}")
    checkpoint = run / "best.pt"
    scoring = EvalConfig(split="test", device=config.device, progress=False)
    result: dict[str, Any] = {
        "variant": variant, "seed": seed, "steps": summary["step"], "train_s": summary["elapsed_s"],
        "checkpoint": str(checkpoint),
        "own": _figures(evaluate_checkpoint(checkpoint, data, run / "eval-own", scoring)),
        "default": _figures(evaluate_checkpoint(checkpoint, default_data, run / "eval-default", scoring))}
    if config.pascal_root:
        from posenet_mlvae.evaluation.sim2real import score_tree

        photos = score_tree(checkpoint, config.pascal_root, Path(config.out) / "photos", category=config.category,
                            device=config.device, workers=config.workers, report=lambda _: None)
        result["photos"] = {k: photos[k] for k in ("med_err_deg", "acc_pi_6", "acc_pi_18", "n", "flips",
                                                   "errors_60_150", "auroc_err_gt_30")}
    atomic_write_json(run / RESULT_FILE, result)
    if data != default_data and not config.keep_data:
        shutil.rmtree(data)
    say(f"{run.name}: {summary['step']} steps; default renders {result['default']['med_err_deg']:.2f} deg"
        + (f", photos {result['photos']['med_err_deg']:.2f} deg" if "photos" in result else ""))
    return result


def run_study(config: AblationConfig, say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every (seed, variant) run (finished ones read back from their RUN/ablation.json)."""
    total = len(config.seeds) * len(config.variants)
    results = []
    for seed in config.seeds:
        saved = {variant: run_dir(config, variant, seed) / RESULT_FILE for variant in config.variants}
        default_data = None
        for variant in config.variants:
            number = len(results) + 1
            if saved[variant].is_file():
                results.append(json.loads(saved[variant].read_text()))
                say(f"[{number}/{total}] {saved[variant].parent.name}: done earlier, reused")
                continue
            say(f"[{number}/{total}] {saved[variant].parent.name}: rendering, then {config.steps} training steps")
            if default_data is None:  # every run of the seed is scored on it: rendered once
                default_data = render(config, EVERYTHING_ON, seed, say)
            results.append(train_and_score(config, variant, seed, default_data, say))
    return results


def aggregate(results: Sequence[dict[str, Any]], variants: Sequence[str]) -> list[dict[str, Any]]:
    """Per variant, in `variants` order: mean, min, max and the values over seeds of each COLUMNS figure."""
    rows = []
    for variant in variants:
        runs = sorted((r for r in results if r["variant"] == variant), key=lambda r: r["seed"])
        if not runs:
            continue
        row: dict[str, Any] = {"variant": variant, "seeds": [r["seed"] for r in runs],
                               "steps": float(np.mean([r["steps"] for r in runs]))}
        for block, key, *_ in COLUMNS:
            values = [r.get(block, {}).get(key) for r in runs]
            if any(v is None for v in values):
                continue
            row[f"{block}_{key}"] = over_seeds(values)
        rows.append(row)
    return rows


def _row_name(row: dict[str, Any], code: str = "") -> str:
    return "everything on" if row["variant"] == EVERYTHING_ON else f"{code}{row['variant']}{code} off"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: one row per variant, 'mean (max - min)' over seeds per figure present in every row."""
    columns = [c for c in COLUMNS if rows and all(f"{c[0]}_{c[1]}" in row for row in rows)]
    header = ["renders", "seeds", "steps"] + [title for _, _, title, _, _ in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_row_name(row, code="`"), " ".join(str(s) for s in row["seeds"]), f"{row['steps']:.0f}"]
        for block, key, _, scale, digits in columns:
            stat = row[f"{block}_{key}"]
            spread = f" ({scale * (stat['max'] - stat['min']):.{digits}f})" if len(stat["values"]) > 1 else ""
            cells.append(f"{scale * stat['mean']:.{digits}f}{spread}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(config: AblationConfig, results: Sequence[dict[str, Any]]) -> dict[str, Path]:
    """OUT/ablation.json (every run and the table's rows), OUT/ablation.md (the table) and
    OUT/ablation.png (MedErr per row on the default build's unseen renders and the photographs)."""
    from eval.plots import ablation_plot

    out = Path(config.out)
    rows = aggregate(results, config.variants)
    paths = {"json": out / "ablation.json", "table": out / "ablation.md", "plot": out / "ablation.png"}
    seeds = " ".join(str(s) for s in config.seeds)
    atomic_write_json(paths["json"], {"config": config.__dict__, "runs": list(results), "rows": rows})
    atomic_write_text(paths["table"], (
        f"Appearance ablation, {config.category}: the demo's build with each factor off in turn, "
        f"{config.steps} training steps per run; mean (max - min) over seeds {seeds}. The own-renders "
        f"columns do not compare across rows (each build has its own test instances); the default "
        f"renders' do.\n\n{format_table(rows)}\n"))
    panels = {title: {_row_name(row): row[f"{block}_{key}"]["values"] for row in rows}
              for block, key, title in (("default", "med_err_deg", "unseen renders of the default build"),
                                        ("photos", "med_err_deg", "photographs"))
              if rows and all(f"{block}_{key}" in row for row in rows)}
    ablation_plot(panels, paths["plot"], title=f"{config.steps} steps, seeds {seeds}")
    return paths


__all__ = ["AblationConfig", "aggregate", "format_table", "run_study", "write_outputs"]
