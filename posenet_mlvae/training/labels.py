"""Semi-supervised training: pose labels on a chosen fraction of the training groups only.

`train --label-fraction f` keeps the viewpoint labels of round(f * n) of the n training groups
that have them (at least one), chosen by the run's seed, and drops the others' labels: those
groups, like grouped datasets without poses (a user's video frames, one group per object), train
the ELBO only. The choice is by group (instance), as a user who labels a few objects would.

So that a batch of K groups still holds labelled views when labels are rare, the sampler deals
each labelled group `labelled_repeats` times per epoch (data_tools.sampler.GroupBatchSampler's
`group_repeats`), enough for the labelled groups to fill about `TrainConfig.labelled_share` of
the batches. The "direct" variant learns nothing from unlabelled images, so it trains on the
labelled groups alone (`labelled_rows_only`), as a plain CNN given those labels would; when they
make less than one batch, every group is dealt more often (`sampler_repeats`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from posenet_mlvae.training.data import SplitData


def choose_labelled_groups(groups: np.ndarray, has_pose: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The sorted group ids that keep their labels: round(fraction * n) (>= 1) of the n groups with
    a labelled view, drawn by `seed` (the same seed and data give the same groups)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label fraction {fraction} must be in (0, 1]")
    candidates = np.unique(groups[has_pose])
    if len(candidates) == 0:
        raise ValueError("no training group has pose labels: the pose head cannot learn; add a dataset "
                         "with poses (e.g. from `posenet-mlvae render`)")
    if fraction >= 1.0:
        return candidates
    count = max(1, int(round(fraction * len(candidates))))
    chosen = np.random.default_rng([seed, 0x1ABE1]).choice(candidates, size=count, replace=False)
    return np.sort(chosen)


def keep_labels(data: SplitData, fraction: float, seed: int) -> SplitData:
    """`data` with pose labels only on the groups that `choose_labelled_groups` picks."""
    if fraction >= 1.0:
        return data
    kept = np.isin(data.group, choose_labelled_groups(data.group, data.has_pose, fraction, seed))
    return dataclasses.replace(data, has_pose=data.has_pose & kept)


def labelled_repeats(data: SplitData, labelled_share: float) -> dict[int, int]:
    """Times each labelled group is dealt per epoch ({group id: repeats}; 1 is left out) so that
    labelled views make up about `labelled_share` of the dealt views (never fewer than without)."""
    labelled_groups = np.unique(data.group[data.has_pose])
    labelled_views = int(np.isin(data.group, labelled_groups).sum())
    other_views = len(data) - labelled_views
    if labelled_views == 0 or other_views == 0 or labelled_share <= 0.0:
        return {}
    wanted = labelled_share / (1.0 - labelled_share) * other_views / labelled_views
    repeats = max(1, int(round(wanted)))
    return {} if repeats == 1 else {int(g): repeats for g in labelled_groups}


def sampler_repeats(data: SplitData, labelled_share: float, groups_per_batch: int, views_per_group: int,
                    world_size: int = 1) -> dict[int, int]:
    """`labelled_repeats`, and when even then the split holds fewer chunks of `views_per_group`
    views than one batch of every rank takes (e.g. "direct" on a few labelled groups), every group
    dealt as many more times as fill one batch."""
    repeats = labelled_repeats(data, labelled_share)
    ids, sizes = np.unique(data.group, return_counts=True)
    chunks = np.maximum(1, -(-sizes // views_per_group)) * np.array([repeats.get(int(g), 1) for g in ids])
    wanted = groups_per_batch * world_size
    if chunks.sum() >= wanted:
        return repeats
    more = -(-wanted // int(chunks.sum()))
    return {int(g): repeats.get(int(g), 1) * more for g in ids}


def labelled_rows_only(data: SplitData) -> SplitData:
    """The rows of `data` whose group has a labelled view (what the "direct" variant trains on)."""
    rows = np.isin(data.group, np.unique(data.group[data.has_pose]))
    if rows.all():
        return data
    return subset_rows(data, np.flatnonzero(rows))


def subset_rows(data: SplitData, rows: np.ndarray) -> SplitData:
    """`data` restricted to `rows` (held in RAM: the images and masks are gathered once)."""
    columns = {name: getattr(data, name)[rows] for name in
               ("group", "category", "azimuth", "elevation", "theta", "has_pose", "flip_allowed")}
    return dataclasses.replace(data, **columns, images=data.gather(rows), masks=data.gather_masks(rows),
                               datasets=[], starts=np.zeros(0, np.int64))


def label_summary(data: SplitData) -> str:
    """'12 of 384 groups (3.1 %) labelled, 288 of 9216 images' for the run log."""
    groups = np.unique(data.group)
    labelled = np.unique(data.group[data.has_pose])
    return (f"{len(labelled)} of {len(groups)} groups ({100.0 * len(labelled) / max(1, len(groups)):.1f} %) "
            f"labelled, {int(data.has_pose.sum())} of {len(data)} images")
