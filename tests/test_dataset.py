"""data_tools.dataset: write/read round trips, chunks and merging, bad input.

Writes under faults (kill -9 mid-file, a full disk, fsyncs) are in test_atomic_write.py.
"""

import csv
import json

import numpy as np
import pytest

from data_tools.dataset import (
    FORMAT_NAME, FORMAT_VERSION, GroupedDataset, GroupedDatasetWriter, chunk_is_complete, merge_chunks,
    read_manifest,
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


def write(root, rows, file_images=7, chunk=None):
    writer = GroupedDatasetWriter(root, image_size=8, file_images=file_images, chunk=chunk)
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
    assert manifest["version"] == FORMAT_VERSION == 2
    assert manifest["files"] == [{"name": "file-00000", "count": 7}, {"name": "file-00001", "count": 7},
                                 {"name": "file-00002", "count": 6}]
    # The names the module's docstring documents are the names on disk.
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [
        "file-00000.npy", "file-00001.npy", "file-00002.npy"]
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == sorted(
        p.name for p in (tmp_path / "images").iterdir())
    with open(tmp_path / "records.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:3] == ["index", "file", "offset"] and "shard" not in header
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


def test_a_version_1_dataset_written_by_hand_still_reads(tmp_path):
    """Format version 1 named the records column `shard` (and the manifest list `shards`)."""
    rng = np.random.default_rng(4)
    images = {"shard-00000": rng.integers(0, 256, (3, 4, 4, 3), dtype=np.uint8),
              "shard-00001": rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)}
    (tmp_path / "images").mkdir()
    for name, array in images.items():
        np.save(tmp_path / "images" / f"{name}.npy", array)
    rows = [(0, "shard-00001", 1, 7, "train", 10.0), (1, "shard-00000", 0, 7, "train", 20.0),
            (2, "shard-00000", 2, 8, "test", 30.0)]
    lines = ["index,shard,offset,group,instance,category,split,source,azimuth,elevation,theta,"
             "distance,has_pose,view"]
    lines += [f"{i},{shard},{offset},{group},car-{group},car,{split},synthetic,{a},5.0,0.0,4.0,1,{i}"
              for i, shard, offset, group, split, a in rows]
    (tmp_path / "records.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "manifest.json").write_text(json.dumps({
        "format": FORMAT_NAME, "version": 1, "image_size": 4, "categories": ["car"], "has_masks": False,
        "counts": {"train": {"images": 2, "groups": 1}, "test": {"images": 1, "groups": 1}},
        "shards": [{"name": "shard-00000", "count": 3}, {"name": "shard-00001", "count": 2}]}))
    ds = GroupedDataset(tmp_path)
    assert ds.records["file"].tolist() == ["shard-00001", "shard-00000", "shard-00000"]
    assert "shard" not in ds.records
    np.testing.assert_array_equal(ds.images([0, 1, 2]), np.stack(
        [images["shard-00001"][1], images["shard-00000"][0], images["shard-00000"][2]]))
    assert ds[2]["azimuth"] == 30.0 and ds[2]["view"] == 2 and ds[2]["image"].shape == (4, 4, 3)
    assert len(GroupedDataset(tmp_path, split="train")) == 2
    # A version newer than the reader is refused, naming both versions.
    (tmp_path / "manifest.json").write_text(json.dumps({**read_manifest(tmp_path), "version": 3}))
    with pytest.raises(ValueError, match="version 3 is newer than this reader"):
        GroupedDataset(tmp_path)

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
    (tmp_path / "ok" / "images" / "file-00000.npy").unlink()
    with pytest.raises(ValueError, match="file-00000.npy"):
        GroupedDataset(tmp_path / "ok").images([0])
    manifest = json.loads((tmp_path / "ok" / "manifest.json").read_text())
    (tmp_path / "ok" / "manifest.json").write_text(json.dumps({**manifest, "format": "other"}))
    with pytest.raises(ValueError, match="format"):
        GroupedDataset(tmp_path / "ok")
