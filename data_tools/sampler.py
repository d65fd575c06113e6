"""Batches of K groups x M views for ML-VAE training, single process or distributed.

An ML-VAE learns its group (content) latent only from batches that hold several views of the
same instance; random batches give groups of one (a known failure of public implementations).
`GroupBatchSampler` yields index arrays of K * M dataset rows, group-major (rows m*... of one
group are consecutive), covering every image about once per epoch:

- each epoch (seeded by (seed, epoch)) the groups are shuffled and dealt to ranks whole
  (rank r takes groups r, r + W, r + 2W, ...), so ranks never share a group;
- each group's members are shuffled and cut into chunks of M views; a last partial chunk, or a
  group with fewer than M views, is filled up by drawing more of that group's members (with
  replacement when the group has fewer than M), so every batch has the same shape;
- the chunks are shuffled and dealt K per batch. Two chunks of one group can share a batch: they
  are then one larger group (still one instance), which the model handles;
- every rank yields the same number of batches (the minimum over ranks), so DDP never waits;
  the count changes from epoch to epoch as groups are dealt anew (`batches_in_epoch(e)`);
- `group_repeats` deals chosen groups several times per epoch, each time cut afresh: in
  semi-supervised training the few labelled groups are repeated so that every batch still holds
  some (posenet_mlvae.training.labels).

Exact resume: `state_dict()` holds (epoch, position), the number of batches already yielded in
the epoch; `load_state_dict` then makes the next iteration continue at that batch.
The sampler is numpy only (no torch).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


class GroupBatchSampler:
    """Yield int64 arrays of `groups_per_batch * views_per_group` row indices, whole groups per rank.

    group_ids: (N,) group id of each dataset row. shuffle=False gives a fixed order (groups in
    id order, members in row order) for evaluation. drop_last=False also yields a final smaller
    batch of the remaining chunks (ranks may then differ by one batch: use it single-process).
    """

    def __init__(self, group_ids, groups_per_batch: int, views_per_group: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, drop_last: bool = True, shuffle: bool = True,
                 group_repeats: dict[int, int] | None = None) -> None:
        group_ids = np.asarray(group_ids)
        if group_ids.ndim != 1 or len(group_ids) == 0:
            raise ValueError(f"group_ids must be a non-empty 1-D array, got shape {group_ids.shape}")
        if groups_per_batch < 1 or views_per_group < 1:
            raise ValueError(f"groups_per_batch={groups_per_batch} and views_per_group={views_per_group} "
                             "must both be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} must be in [0, world_size={world_size})")
        self.groups_per_batch, self.views_per_group = int(groups_per_batch), int(views_per_group)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.drop_last, self.shuffle = drop_last, shuffle
        order = np.argsort(group_ids, kind="stable")
        self.group_values, starts = np.unique(group_ids[order], return_index=True)
        self.members = np.split(order.astype(np.int64), starts[1:])  # list of (n_g,) row arrays
        if len(self.members) < world_size:
            raise ValueError(f"{len(self.members)} groups cannot be dealt to {world_size} ranks")
        repeats = group_repeats or {}
        if any(int(r) < 1 for r in repeats.values()):
            raise ValueError(f"group_repeats must all be >= 1, got {sorted(set(repeats.values()))}")
        self.repeats = np.array([int(repeats.get(int(g), 1)) for g in self.group_values])  # (G,)
        self.chunk_counts = self.repeats * np.array([max(1, -(-len(m) // self.views_per_group))
                                                     for m in self.members])
        self.epoch = 0
        self.position = 0

    def set_epoch(self, epoch: int) -> None:
        """Start epoch `epoch` from its first batch (call at the start of every epoch)."""
        self.epoch, self.position = int(epoch), 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def _chunks(self, group_positions: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        m = self.views_per_group
        chunks = []
        for g in np.repeat(group_positions, self.repeats[group_positions]):
            rows = self.members[g]
            rows = rng.permutation(rows) if self.shuffle else rows
            if len(rows) < m:  # too few views: draw the missing ones again (with replacement)
                extra = rng.choice(rows, m - len(rows), replace=True) if self.shuffle else np.resize(rows, m - len(rows))
                chunks.append(np.concatenate([rows, extra]))
                continue
            n_full, rest = divmod(len(rows), m)
            chunks.extend(rows[i * m:(i + 1) * m] for i in range(n_full))
            if rest:  # fill the partial chunk with other members of the same group
                others = rows[: len(rows) - rest]
                fill = rng.choice(others, m - rest, replace=False) if self.shuffle else others[: m - rest]
                chunks.append(np.concatenate([rows[len(rows) - rest:], fill]))
        return chunks

    def _groups_per_rank(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        n_groups = len(self.members)
        group_order = rng.permutation(n_groups) if self.shuffle else np.arange(n_groups)
        usable = n_groups - n_groups % self.world_size  # equal number of groups per rank
        return [group_order[r:usable:self.world_size] for r in range(self.world_size)]

    def batches_in_epoch(self, epoch: int) -> int:
        """Batches this rank yields in `epoch` (the same on every rank with drop_last); cheap, no batch is built."""
        chunk_counts = [int(self.chunk_counts[groups].sum()) for groups in self._groups_per_rank(epoch)]
        k = self.groups_per_batch
        return min(chunk_counts) // k if self.drop_last else -(-chunk_counts[self.rank] // k)

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        k, n_batches = self.groups_per_batch, self.batches_in_epoch(epoch)
        rank_rng = np.random.default_rng([self.seed, epoch, self.rank])
        chunks = self._chunks(self._groups_per_rank(epoch)[self.rank], rank_rng)
        if self.shuffle:
            chunks = [chunks[i] for i in rank_rng.permutation(len(chunks))]
        return [np.concatenate(chunks[b * k:(b + 1) * k]) for b in range(n_batches)]

    def __len__(self) -> int:
        return self.batches_in_epoch(self.epoch)

    def __iter__(self) -> Iterator[np.ndarray]:
        batches = self._epoch_batches(self.epoch)
        while self.position < len(batches):
            batch = batches[self.position]
            self.position += 1
            yield batch
