"""What a training run reports: a tqdm bar, metrics.csv, TensorBoard event files, summary lines.

Only rank 0 writes (enabled=False makes every method a no-op except keeping the bar off).
metrics.csv has one row per `log_every` training steps (averages over those steps, kind=train)
and one per validation (kind=val); TensorBoard gets the same scalars under train/ and val/.
metrics.csv and summary.json go through `data_tools.atomic_write`: the table is rewritten whole
after each row (its rows are kept as text, a few hundred bytes each), so a reader plotting it
during training never sees a cut-off line, and a resumed run keeps the rows already written.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import torch

from data_tools.atomic_write import atomic_write_json, atomic_write_text

CSV_COLUMNS = ("kind", "step", "epoch", "time_s", "lr", "images_per_s", "grad_norm", "total", "neg_elbo", "recon",
               "kl_obs", "kl_content", "contrast", "pose", "azimuth_ce", "azimuth_offset", "elevation", "theta",
               "med_err_deg", "acc_pi_6", "acc_pi_18", "n")


def _csv_line(row: dict[str, Any]) -> str:
    """One metrics.csv line (CSV_COLUMNS order, blanks for absent values, extra keys ignored)."""
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, restval="", extrasaction="ignore",
                   lineterminator="\n").writerow(row)
    return buffer.getvalue()


def _read_csv_lines(path: Path) -> list[str]:
    """The data lines of an existing metrics.csv, re-rendered in today's CSV_COLUMNS order."""
    with open(path, newline="", encoding="utf-8") as f:
        return [_csv_line(row) for row in csv.DictReader(f)]


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix_str(self, s: str) -> None: ...
    def close(self) -> None: ...


class RunLog:
    def __init__(self, out_dir: Path, enabled: bool = True, resume: bool = False, log_every: int = 20) -> None:
        self.enabled, self.log_every = enabled, log_every
        self.out_dir = Path(out_dir)
        self.start = time.perf_counter()
        self._sums: dict[str, float] = {}
        self._count, self._images, self._interval_start = 0, 0, time.perf_counter()
        self._bar: Any = _NoBar()
        self._writer = None
        self.images_per_s = float("nan")
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._csv_path = self.out_dir / "metrics.csv"
        self._csv_lines = _read_csv_lines(self._csv_path) if resume and self._csv_path.is_file() else []
        self._write_csv()
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(self.out_dir / "tb"))

    def progress(self, total: int | None, initial: int = 0, enabled: bool = True):
        if self.enabled and enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=1.0,
                             desc="train")
        return self._bar

    def line(self, message: str) -> None:
        if self.enabled:
            from tqdm import tqdm

            tqdm.write(message)

    def _row(self, kind: str, step: int, epoch: int, values: dict[str, float]) -> None:
        self._csv_lines.append(_csv_line({"kind": kind, "step": step, "epoch": epoch,
                                          "time_s": round(time.perf_counter() - self.start, 2), **values}))
        self._write_csv()
        for key, value in values.items():
            self._writer.add_scalar(f"{kind}/{key}", value, step)

    def _write_csv(self) -> None:
        atomic_write_text(self._csv_path, ",".join(CSV_COLUMNS) + "\n" + "".join(self._csv_lines))

    def train_step(self, step: int, epoch: int, terms, lr: float, grad_norm: float, batch_size: int,
                   world_size: int = 1) -> None:
        if not self.enabled:
            return
        values = dict(zip(terms._fields, torch.stack([t.detach().float() for t in terms]).tolist()))
        for key, value in values.items():
            self._sums[key] = self._sums.get(key, 0.0) + value
        self._sums["grad_norm"] = self._sums.get("grad_norm", 0.0) + grad_norm
        self._count += 1
        self._images += batch_size * world_size
        self._bar.update(1)
        if self._count >= self.log_every:
            now = time.perf_counter()
            self.images_per_s = self._images / max(now - self._interval_start, 1e-9)
            means = {k: v / self._count for k, v in self._sums.items()}
            self._row("train", step, epoch, {**means, "lr": lr, "images_per_s": self.images_per_s})
            self._bar.set_postfix_str(f"loss {means['total']:.3g} pose {means['pose']:.3f} "
                                      f"recon {means['recon']:.3g} {self.images_per_s:.0f} img/s")
            self._sums, self._count, self._images, self._interval_start = {}, 0, 0, now

    def validation(self, step: int, epoch: int, val: dict[str, float]) -> None:
        if not self.enabled:
            return
        self._row("val", step, epoch, val)
        self.line(f"val epoch {epoch} step {step}: MedErr {val['med_err_deg']:.2f} deg, "
                  f"Acc@pi/6 {100 * val['acc_pi_6']:.1f}%, Acc@pi/18 {100 * val['acc_pi_18']:.1f}% "
                  f"(n={val['n']}); -ELBO {val['neg_elbo']:.1f} (recon {val['recon']:.1f}, "
                  f"KL obs {val['kl_obs']:.1f}, KL content {val['kl_content']:.1f})")

    def finish(self, summary: dict[str, Any]) -> None:
        if not self.enabled:
            return
        best = summary["best_val"]
        validated = "step" in best
        best_text = (f"best val MedErr {best['med_err_deg']:.2f} deg (step {best['step']})" if validated
                     else "no validation score")
        self.line(f"{summary['status']}: step {summary['step']}, epoch {summary['epoch']}, "
                  f"{summary['elapsed_s'] / 60:.1f} min; {best_text}; run folder {self.out_dir}")
        atomic_write_json(self.out_dir / "summary.json", summary, default=float)
        self._writer.close()
