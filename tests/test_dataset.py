"""data_tools.dataset: write/read round trips, chunks and merging, bad input.

Writes under faults (kill -9 mid-shard, a full disk, fsyncs) are in test_atomic_write.py.
"""

import json

import numpy as np
import pytest

from data_tools.dataset import (
    GroupedDataset, GroupedDatasetWriter, merge_chunks, chunk_is_complete, read_manifest,
)


def make_rows(n_groups=5, views=4, size=8, seed=0):
    rng = np.random.default_rng(seed)
    for group in range(n_groups):
        split = ("train", "train", "train", "val", "test")[group % 5]
        for view in range(views):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            mask = (rng.random((size, size)) > 0.5).astype(np.uint8) * 255
            record = {"group": group, "instance": f"car-{group:04d}", "category": "car", "split": split,
                      "source": "test", "azimuth": 15.0 * view, "elevation": 10.0, "theta": -2.5,
                      "distance": 4.0 + view, "light": 0.25 * view,
                      "voc_id": f"2008_{group:06d}", "maker": "Citroën"}
            yield image, mask, record


def write(root, rows, shard_size=7, chunk=None):
    writer = GroupedDatasetWriter(root, image_size=8, shard_size=shard_size, chunk=chunk)
    for image, mask, record in rows:
        writer.add(image, record, mask)
    return writer.close({"source": "test", "seed": 0})


def test_round_trip_images_masks_records(tmp_path):
    rows = list(make_rows())
    write(tmp_path, rows)
    manifest = read_manifest(tmp_path)
    assert manifest["image_size"] == 8 and manifest["categories"] == ["car"]
    assert manifest["counts"] == {"test": {"images": 4, "groups": 1}, "train": {"images": 12, "groups": 3},
                                  "val": {"images": 4, "groups": 1}}
    assert sum(s["count"] for s in manifest["shards"]) == 20 and len(manifest["shards"]) == 3
    ds = GroupedDataset(tmp_path)
    assert len(ds) == 20
    np.testing.assert_array_equal(ds.images(np.arange(20)), np.stack([r[0] for r in rows]))
    np.testing.assert_array_equal(ds.masks([3, 19, 0]), np.stack([rows[i][1] for i in (3, 19, 0)]))
    sample = ds[5]
    assert sample["group"] == 1 and sample["azimuth"] == 15.0 and sample["has_pose"] == 1
    assert sample["light"] == 0.25 and sample["instance"] == "car-0001"
    assert sample["voc_id"] == "2008_000001"  # not parsed as the number 2008000001
    assert sample["maker"] == "Citroën"  # records.csv is UTF-8 whatever the locale
    np.testing.assert_array_equal(sample["image"], rows[5][0])


def test_split_and_category_filters(tmp_path):
    write(tmp_path, make_rows())
    train = GroupedDataset(tmp_path, split="train")
    assert len(train) == 12 and set(train.records["group"]) == {0, 1, 2}
    both = GroupedDataset(tmp_path, split=["val", "test"])
    assert set(both.records["group"]) == {3, 4}
    assert len(GroupedDataset(tmp_path, categories=["chair"])) == 0
    with pytest.raises(ValueError, match="unknown split"):
        GroupedDataset(tmp_path, split="validation")


def test_chunks_merge_equals_single_build(tmp_path):
    rows = list(make_rows())
    write(tmp_path / "single", rows)
    root = tmp_path / "sharded"
    write(root, rows[:8], chunk="chunk-00000")
    assert chunk_is_complete(root, "chunk-00000")
    assert not chunk_is_complete(root, "chunk-00001")
    with pytest.raises(ValueError, match="chunk-00001"):
        merge_chunks(root, ["chunk-00000", "chunk-00001"])
    write(root, rows[8:], chunk="chunk-00001")
    merge_chunks(root, ["chunk-00000", "chunk-00001"])
    single, merged = GroupedDataset(tmp_path / "single"), GroupedDataset(root)
    np.testing.assert_array_equal(single.images(np.arange(20)), merged.images(np.arange(20)))
    for name in ("index", "group", "azimuth", "split", "instance", "light"):
        np.testing.assert_array_equal(single.records[name], merged.records[name])
    assert read_manifest(root)["counts"] == read_manifest(tmp_path / "single")["counts"]


def test_no_temporary_files_left_and_unlabelled_rows(tmp_path):
    writer = GroupedDatasetWriter(tmp_path, image_size=4, with_masks=False)
    writer.add(np.zeros((4, 4, 3), np.uint8), {"group": 0, "category": "car", "split": "train"})
    writer.close()
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    ds = GroupedDataset(tmp_path)
    assert ds.records["has_pose"][0] == 0 and np.isnan(ds.records["azimuth"][0])
    assert ds.masks([0]) is None and ds[0]["mask"] is None


def test_bad_inputs(tmp_path):
    writer = GroupedDatasetWriter(tmp_path, image_size=8)
    with pytest.raises(ValueError, match="uint8"):
        writer.add(np.zeros((8, 8, 3), np.float32), {"group": 0, "category": "car", "split": "train"},
                   np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="mask"):
        writer.add(np.zeros((8, 8, 3), np.uint8), {"group": 0, "category": "car", "split": "train"})
    with pytest.raises(ValueError, match="split"):
        writer.add(np.zeros((8, 8, 3), np.uint8), {"group": 0, "category": "car", "split": "dev"},
                   np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="no manifest.json"):
        GroupedDataset(tmp_path / "nowhere")
    write(tmp_path / "ok", make_rows(1, 2))
    (tmp_path / "ok" / "images" / "shard-00000.npy").unlink()
    with pytest.raises(ValueError, match="shard-00000.npy"):
        GroupedDataset(tmp_path / "ok").images([0])
    manifest = json.loads((tmp_path / "ok" / "manifest.json").read_text())
    (tmp_path / "ok" / "manifest.json").write_text(json.dumps({**manifest, "format": "other"}))
    with pytest.raises(ValueError, match="format"):
        GroupedDataset(tmp_path / "ok")
