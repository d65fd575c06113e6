"""A miniature PASCAL3D+ release 1.1 tree, written per the recipe of PASCAL3D.md section 7.

`make_pascal3d_fixture(root)` writes car and chair annotations (VOC `pascal` and `imagenet`
sources), images, the VOC2012 and ImageNet split lists and CAD files. The geometry is
self-consistent: each object is a small left-right symmetric CAD-like mesh (`cad_model`),
projected with `data_tools.geometry.project_points` (PASCAL3D+ camera); its bbox is the
projected extent and its faces are drawn into the JPEG in the category's colour, so crops
really contain the object. Projected coordinates are MATLAB-style 1-based pixel positions.
The tests and `posenet-mlvae bench pascal3d` (`write_benchmark_tree`) both use it.

Files per category (ids below; the same layout for car and chair), with what the standard
protocol must do with each object:

VOC val (test split)                     VOC train (train split)
  v1  single object, clean -> kept         t1  clean, truncated, occluded -> kept;
  v2  clean -> kept, person -> other,          difficult -> skip; person -> other
      truncated, occluded, difficult       t2  single, coarse-only viewpoint -> kept (theta 0)
  v3  distance 0 + a=e=theta=0 -> zero;    t3  single, a=e=theta=0 -> zero_viewpoint
      coarse-only -> coarse_only_viewpoint t4  not a MAT file -> file_not_mat
  v4  clean, JPEG missing -> missing_image t5  record without `objects`
  v5  clean, bbox outside -> box_outside
  v6  clean -> kept; empty bbox -> no_bbox
  v7  single, struct without bbox field -> no_bbox
  shared 2008_000050: a car and a chair; each class folder's copy annotates its own class
ImageNet (train split)
  i1 train list, clean -> kept             i5 val list, empty viewpoint -> empty_viewpoint
  i2 val list, clean, no filename/imgsize  i6 train list, clean, JPEG is garbage -> kept by the
  i3 clean, difficult -> kept;                index, unreadable_image at build
     truncated, occluded -> skipped        i7 train list, bbox outside, no imgsize -> kept by
  i4 in no list -> file_not_in_split_lists    the index, box_outside_image at build
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from data_tools.geometry import project_points, viewpoint_to_rotation, camera_center

WIDTH, HEIGHT = 320, 240
COLOURS = {"car": (210, 30, 30), "chair": (30, 60, 210), "bed": (200, 200, 30)}  # RGB
PERSON_COLOUR = (60, 140, 60)
SYNSETS = {"car": "n02958343", "chair": "n03001627"}
KEYPOINTS = {
    "car": ("left_front_wheel", "left_back_wheel", "right_front_wheel", "right_back_wheel",
            "upper_left_windshield", "upper_right_windshield", "upper_left_rearwindow",
            "upper_right_rearwindow", "left_front_light", "right_front_light", "left_back_trunk",
            "right_back_trunk"),
    "chair": ("back_upper_left", "back_upper_right", "seat_upper_left", "seat_upper_right",
              "seat_lower_left", "seat_lower_right", "leg_upper_left", "leg_upper_right",
              "leg_lower_left", "leg_lower_right"),
}
OBJECT_FIELDS = ("class", "view", "truncated", "occluded", "difficult", "label", "orglabel", "bbox",
                 "bndbox", "polygon", "mask", "hasparts", "part", "point", "actions", "hasactions",
                 "viewpoint", "cad_index", "anchors")
VIEWPOINT_FIELDS = ("azimuth_coarse", "elevation_coarse", "azimuth", "elevation", "distance", "focal",
                    "px", "py", "theta", "error", "interval_azimuth", "interval_elevation",
                    "num_anchor", "viewport")
N_CAD = 3
# Object centres (1-based pixels) for up to six objects per image.
SLOTS = ((60, 65), (160, 65), (260, 65), (60, 175), (160, 175), (260, 175))
EMPTY = np.zeros((0, 0))


def _box(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (8, 3) and outward-wound triangles (12, 3) of an axis-aligned box."""
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    v = np.array([[x, y, z] for z in (z0, z1) for y in (y0, y1) for x in (x0, x1)], float)
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    faces = [t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]
    return v, np.array(faces)


def cad_model(category: str, k: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """CAD model k (1-based) of a class: vertices (V, 3), 0-based faces (F, 3), 3-D keypoints.

    Left-right symmetric (x -> -x), front toward -y, +z up, about unit diagonal: a car is a body
    with a cabin set back toward the rear, a chair a seat with a backrest at the rear.
    """
    s = 1.0 + 0.08 * (k - 1)
    if category == "car":
        parts = [_box((-0.18 * s, -0.44, -0.14), (0.18 * s, 0.44, 0.02)),
                 _box((-0.15 * s, -0.08, 0.02), (0.15 * s, 0.32, 0.14))]
        keys = [(-0.18, -0.3, -0.14), (-0.18, 0.3, -0.14), (0.18, -0.3, -0.14), (0.18, 0.3, -0.14),
                (-0.15, -0.08, 0.14), (0.15, -0.08, 0.14), (-0.15, 0.32, 0.14), (0.15, 0.32, 0.14),
                (-0.15, -0.44, 0.0), (0.15, -0.44, 0.0), (-0.15, 0.44, 0.0), (0.15, 0.44, 0.0)]
    else:
        parts = [_box((-0.2 * s, -0.2, -0.05), (0.2 * s, 0.2, 0.02)),
                 _box((-0.2 * s, 0.14, 0.02), (0.2 * s, 0.2, 0.4)),
                 _box((-0.04 * s, -0.04, -0.3), (0.04 * s, 0.04, -0.05))]
        keys = [(-0.2, 0.2, 0.4), (0.2, 0.2, 0.4), (-0.2, 0.14, 0.02), (0.2, 0.14, 0.02),
                (-0.2, -0.2, 0.02), (0.2, -0.2, 0.02), (-0.04, 0.04, -0.05), (0.04, 0.04, -0.05),
                (-0.04, -0.04, -0.3), (0.04, -0.04, -0.3)]
    vertices = np.concatenate([p[0] for p in parts])
    faces = np.concatenate([p[1] + 8 * i for i, p in enumerate(parts)])
    names = KEYPOINTS.get(category, KEYPOINTS["chair"])  # other classes reuse the chair shape
    keypoints = {name: np.array(xyz) * (s, 1, 1) for name, xyz in zip(names, keys)}
    return vertices, faces, keypoints


@dataclass(frozen=True)
class Pose:
    azimuth: float
    elevation: float
    theta: float
    distance: float
    px: float
    py: float


def silhouette(category: str, cad: int, pose: Pose, shape=(HEIGHT, WIDTH)) -> np.ndarray:
    """uint8 mask (255 = object) of the projected CAD faces, as drawn into the fixture images."""
    mask = np.zeros(shape, np.uint8)
    vertices, faces, _ = cad_model(category, cad)
    xy = _project(vertices, pose)
    for face in faces:
        cv2.fillPoly(mask, [np.round((xy[face] - 1.0) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return np.where(mask >= 128, 255, 0).astype(np.uint8)


def _project(points: np.ndarray, pose: Pose) -> np.ndarray:
    return project_points(points, pose.azimuth, pose.elevation, pose.theta, pose.distance,
                          pose.px, pose.py)


def _draw_object(image: np.ndarray, category: str, cad: int, pose: Pose) -> list[float]:
    """Draw the shaded CAD faces far-to-near; return the VOC bbox [x1 y1 x2 y2] (1-based)."""
    vertices, faces, _ = cad_model(category, cad)
    xy = _project(vertices, pose)
    R = viewpoint_to_rotation(pose.azimuth, pose.elevation, pose.theta)
    camera = (vertices - camera_center(pose.azimuth, pose.elevation, pose.distance)) @ R.T
    tri = camera[faces]  # (F, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    shade = 0.6 + 0.4 * np.abs(normals[:, 2]) / np.maximum(np.linalg.norm(normals, axis=1), 1e-12)
    for f in np.argsort(tri[:, :, 2].mean(axis=1)):  # most negative z = farthest first
        colour = tuple(float(c * shade[f]) for c in COLOURS[category])
        cv2.fillPoly(image, [np.round((xy[faces[f]] - 1.0) * 16).astype(np.int32)], colour,
                     cv2.LINE_AA, 4)
    x1, y1 = np.clip(np.round(xy.min(axis=0)), 1, [WIDTH, HEIGHT])
    x2, y2 = np.clip(np.round(xy.max(axis=0)), 1, [WIDTH, HEIGHT])
    return [float(x1), float(y1), float(x2), float(y2)]


def _anchors(category: str, cad: int, pose: Pose) -> dict:
    _, _, keypoints = cad_model(category, cad)
    names = list(keypoints)
    xy = _project(np.stack([keypoints[n] for n in names]), pose)
    anchors = {}
    for name, (x, y) in zip(names, xy):
        inside = 1 <= x <= WIDTH and 1 <= y <= HEIGHT
        anchors[name] = {"location": np.array([[x, y]]) if inside else EMPTY,
                         "status": 1.0 if inside else 0.0}
    return anchors


@dataclass(frozen=True)
class ObjectSpec:
    """One object to write. kind: "full" | "zero" (d=0, a=e=theta=0) | "coarse" | "empty" | "other"."""

    category: str
    kind: str = "full"
    cad: int = 1
    truncated: bool = False
    occluded: bool = False
    difficult: bool = False
    bbox: str = "projected"  # "projected" | "outside" | "empty" | "field_missing"
    azimuth: float | None = None  # overrides the random azimuth (ObjectNet3D negative azimuths)


def _viewpoint(kind: str, pose: Pose) -> dict | np.ndarray:
    coarse = {"azimuth_coarse": float(round(pose.azimuth / 15) * 15 % 360),
              "elevation_coarse": float(round(pose.elevation / 15) * 15)}
    if kind in ("empty", "other"):
        return EMPTY
    if kind == "coarse":
        return coarse
    values = {**coarse, "azimuth": pose.azimuth, "elevation": pose.elevation,
              "distance": pose.distance, "focal": 1.0, "px": pose.px, "py": pose.py,
              "theta": pose.theta, "error": 1.5, "interval_azimuth": 5.0,
              "interval_elevation": 3.0, "num_anchor": np.array([[6.0]]), "viewport": 3000.0}
    if kind == "zero":
        values.update(azimuth=0.0, elevation=0.0, theta=0.0, distance=0.0)
    return {name: values[name] for name in VIEWPOINT_FIELDS}


def _random_pose(rng: np.random.Generator, category: str, slot: int) -> Pose:
    px, py = SLOTS[slot]
    distance = 3000.0 / (70.0 if category == "car" else 90.0)  # about 60 px objects
    return Pose(float(np.round(rng.uniform(0, 360), 2)), float(np.round(rng.uniform(-5, 35), 2)),
                float(np.round(rng.uniform(-12, 12), 2)), distance, float(px), float(py))


def write_image_and_record(ann_path: Path, img_path: Path | None, specs: list[ObjectSpec],
                           folder_class: str | None, rng: np.random.Generator, database: str = "VOC2012",
                           with_size: bool = True, with_filename: bool = True,
                           image_bytes: bytes | None = None) -> dict[int, dict]:
    """Draw the objects into a JPEG at `img_path` (None: no image) and save the record.

    folder_class: the class this record annotates in 3-D (PASCAL3D+ class folder), or None to
    annotate every object (ObjectNet3D). Returns {object index: truth} for objects that carry a
    viewpoint: the pose written, cad, bbox and kind.
    """
    image = np.clip(rng.normal(128, 14, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
    image[..., 1] = np.clip(image[..., 1].astype(int) + 10, 0, 255)
    objects, truth = [], {}
    for index, spec in enumerate(specs):
        pose = _random_pose(rng, spec.category, index)
        if spec.azimuth is not None:
            pose = Pose(spec.azimuth, pose.elevation, pose.theta, pose.distance, pose.px, pose.py)
        if spec.kind == "other":  # a person: an upright rectangle, no 3-D annotation
            x, y = SLOTS[index]
            bbox = [x - 15.0, y - 35.0, x + 15.0, y + 35.0]
            cv2.rectangle(image, (int(bbox[0]) - 1, int(bbox[1]) - 1), (int(bbox[2]) - 1, int(bbox[3]) - 1),
                          PERSON_COLOUR, -1)
        else:
            bbox = _draw_object(image, spec.category, spec.cad, pose)
        annotated = spec.kind != "other" and folder_class in (None, spec.category)
        kind = spec.kind if annotated else "empty"
        if spec.bbox == "outside":
            bbox = [WIDTH + 30.0, HEIGHT + 20.0, WIDTH + 90.0, HEIGHT + 70.0]
        obj = {"class": "person" if spec.kind == "other" else spec.category,
               "view": "Frontal" if index == 0 else "", "truncated": np.array([[spec.truncated]]),
               "occluded": np.array([[spec.occluded]]), "difficult": np.array([[spec.difficult]]),
               "label": float(index + 1), "orglabel": float(index + 1),
               "bbox": EMPTY if spec.bbox == "empty" else np.array([bbox]),
               "bndbox": {"xmin": str(int(bbox[0])), "ymin": str(int(bbox[1])),
                          "xmax": str(int(bbox[2])), "ymax": str(int(bbox[3]))},
               "polygon": EMPTY, "mask": EMPTY, "hasparts": np.array([[False]]), "part": EMPTY,
               "point": EMPTY, "actions": EMPTY, "hasactions": np.array([[False]]),
               "viewpoint": _viewpoint(kind, pose),
               "cad_index": float(spec.cad) if annotated else EMPTY,
               "anchors": _anchors(spec.category, spec.cad, pose) if annotated and kind == "full" else EMPTY}
        objects.append(obj)
        if annotated and kind in ("full", "zero", "coarse"):
            truth[index] = {"pose": pose, "cad": spec.cad, "bbox": bbox, "kind": kind}
    if img_path is not None:
        img_path.parent.mkdir(parents=True, exist_ok=True)
        if image_bytes is None:
            _, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, 95])
            image_bytes = encoded.tobytes()
        img_path.write_bytes(image_bytes)
    # A struct array shares its fields: "field_missing" drops `bbox` from every object of the file.
    names = [n for n in OBJECT_FIELDS
             if not (n == "bbox" and any(s.bbox == "field_missing" for s in specs))]
    array = np.empty((1, len(objects)), dtype=[(n, object) for n in names])
    for i, obj in enumerate(objects):
        array[0, i] = tuple(obj[n] for n in names)
    stem = ann_path.stem
    ext = ".jpg" if database == "VOC2012" else ".JPEG"
    record = {"folder": database, "source": {"database": database, "annotation": "PASCAL3D+",
                                              "image": "flickr" if database == "VOC2012" else "ImageNet"},
              "imgname": f"{database}/JPEGImages/{stem}{ext}", "database": database,
              "objects": array}
    if with_filename:
        record["filename"] = stem + ext
    if with_size:
        record["size"] = {"width": float(WIDTH), "height": float(HEIGHT), "depth": 3.0}
        record["imgsize"] = np.array([[WIDTH, HEIGHT, 3.0]])
    if database == "VOC2012":
        record["segmented"] = np.array([[False]])
    ann_path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(ann_path, {"record": record})
    return truth


def _write_cad(root: Path, category: str) -> None:
    models = []
    for k in range(1, N_CAD + 1):
        vertices, faces, keypoints = cad_model(category, k)
        models.append({"vertices": vertices, "faces": (faces + 1).astype(float),
                       **{n: xyz[None] for n, xyz in keypoints.items()},
                       "pnames": np.array(list(keypoints), dtype=object)[None]})
        off = root / "CAD" / category / f"{k:02d}.off"
        off.parent.mkdir(parents=True, exist_ok=True)
        lines = ["OFF", f"{len(vertices)} {len(faces)} 0"]
        lines += [" ".join(f"{c:.6f}" for c in v) for v in vertices]
        lines += ["3 " + " ".join(str(i) for i in f) for f in faces]
        off.write_text("\n".join(lines) + "\n")
    array = np.empty((1, N_CAD), dtype=[(n, object) for n in models[0]])
    for i, model in enumerate(models):
        array[0, i] = tuple(model.values())
    scipy.io.savemat(root / "CAD" / f"{category}.mat", {category: array})


def _write_list(path: Path, ids, labels: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if labels is None:
        path.write_text("".join(f"{i}\n" for i in ids))
    else:  # VOC style: two spaces before non-negative labels
        path.write_text("".join(f"{i} {'' if labels[i] < 0 else ' '}{labels[i]}\n" for i in ids))


def make_pascal3d_fixture(root: str | Path, seed: int = 0) -> dict[tuple, dict]:
    """Write the tree described in the module docstring under `root`.

    Returns the ground truth {(category, source, image_id, object_index): {"pose", "cad",
    "bbox", "kind"}} of every object written with a viewpoint of its folder's class.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    truth: dict[tuple, dict] = {}
    voc_train, voc_val = [], []
    voc_labels: dict[str, dict[str, int]] = {"car": {}, "chair": {}}
    S = ObjectSpec

    def pascal(cls, vid, specs, split, image=True, **kwargs):
        ann = root / "Annotations" / f"{cls}_pascal" / f"{vid}.mat"
        img = root / "Images" / f"{cls}_pascal" / f"{vid}.jpg" if image else None
        for i, t in write_image_and_record(ann, img, specs, cls, np.random.default_rng([seed, hash_id(vid)]),
                                           **kwargs).items():
            truth[(cls, "pascal", vid, i)] = t
        (voc_val if split == "val" else voc_train).append(vid)
        for c in voc_labels:
            voc_labels[c][vid] = 1 if any(s.category == c for s in specs) else -1

    def imagenet(cls, iid, specs, **kwargs):
        ann = root / "Annotations" / f"{cls}_imagenet" / f"{iid}.mat"
        img = root / "Images" / f"{cls}_imagenet" / f"{iid}.JPEG"
        for i, t in write_image_and_record(ann, img, specs, cls, np.random.default_rng([seed, hash_id(iid)]),
                                           database="ImageNet", **kwargs).items():
            truth[(cls, "imagenet", iid, i)] = t

    for base, cls in ((0, "car"), (100, "chair")):
        v = lambda n: f"2008_{base + n:06d}"  # noqa: E731
        pascal(cls, v(1), [S(cls, cad=1)], "val")
        pascal(cls, v(2), [S(cls, cad=2), S("person", "other"), S(cls, truncated=True),
                           S(cls, occluded=True), S(cls, difficult=True)], "val")
        pascal(cls, v(3), [S(cls, "zero"), S(cls, "coarse")], "val")
        pascal(cls, v(4), [S(cls)], "val", image=False)
        pascal(cls, v(5), [S(cls, bbox="outside")], "val")
        pascal(cls, v(6), [S(cls, cad=1), S(cls, bbox="empty")], "val")
        pascal(cls, v(7), [S(cls, bbox="field_missing")], "val")
        pascal(cls, v(11), [S(cls, cad=1), S(cls, cad=2, truncated=True), S(cls, cad=3, occluded=True),
                            S(cls, difficult=True), S("person", "other")], "train")
        pascal(cls, v(12), [S(cls, "coarse", cad=1)], "train")
        pascal(cls, v(13), [S(cls, "zero")], "train")
        for n, content in ((14, None), (15, "no_objects")):
            ann = root / "Annotations" / f"{cls}_pascal" / f"{v(n)}.mat"
            ann.parent.mkdir(parents=True, exist_ok=True)
            if content is None:
                ann.write_bytes(b"this is not a MAT file, just text\n" * 8)
            else:
                scipy.io.savemat(ann, {"record": {"folder": "VOC2012", "filename": f"{v(n)}.jpg"}})
            voc_train.append(v(n))
            for c in voc_labels:
                voc_labels[c][v(n)] = 1 if c == cls else -1
        syn = SYNSETS[cls]
        i = lambda n: f"{syn}_{n}"  # noqa: E731
        imagenet(cls, i(1), [S(cls, cad=2)])
        imagenet(cls, i(2), [S(cls, cad=1)], with_size=False, with_filename=False)
        imagenet(cls, i(3), [S(cls, cad=2), S(cls, truncated=True), S(cls, occluded=True),
                             S(cls, cad=3, difficult=True)])
        imagenet(cls, i(4), [S(cls)])
        imagenet(cls, i(5), [S(cls, "empty")])
        imagenet(cls, i(6), [S(cls)], image_bytes=b"\xff\xd8 not really a JPEG")
        imagenet(cls, i(7), [S(cls, bbox="outside")], with_size=False)
        _write_list(root / "Image_sets" / f"{cls}_imagenet_train.txt", [i(1), i(3), i(6), i(7)])
        _write_list(root / "Image_sets" / f"{cls}_imagenet_val.txt", [i(2), i(5)])
        _write_cad(root, cls)
    shared = "2008_000050"
    for cls in ("car", "chair"):
        pascal(cls, shared, [S("car", cad=3), S("chair", cad=3)], "val")
    voc_val = list(dict.fromkeys(voc_val))
    main = root / "PASCAL" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main"
    _write_list(main / "train.txt", sorted(voc_train))
    _write_list(main / "val.txt", sorted(voc_val))
    _write_list(main / "trainval.txt", sorted(voc_train + voc_val))
    for cls, labels in voc_labels.items():
        _write_list(main / f"{cls}_train.txt", sorted(voc_train), labels)
        _write_list(main / f"{cls}_val.txt", sorted(voc_val), labels)
    return truth


def hash_id(text: str) -> int:
    """A stable (not salted) integer for seeding per-file generators."""
    return int.from_bytes(text.encode()[-8:].rjust(8, b"\0"), "little")


def make_objectnet3d_fixture(root: str | Path, seed: int = 0) -> dict[tuple, dict]:
    """A tiny ObjectNet3D-style tree: `Annotations/{id}.mat` annotating every class of the image.

    train list: a (car, chair, bed) image and a car written with azimuth -30; val list: a clean
    chair and a truncated car; test list: one more image (not used by the protocol).
    Returns the ground truth keyed like `make_pascal3d_fixture`'s, source "objectnet3d".
    """
    root = Path(root)
    S = ObjectSpec
    files = {"n0001_1": ("train", [S("car", cad=1), S("chair", cad=2), S("bed")]),
             "n0001_2": ("train", [S("car", cad=2, azimuth=-30.0)]),
             "n0001_3": ("val", [S("chair", cad=1), S("car", truncated=True)]),
             "n0001_4": ("test", [S("car")])}
    truth: dict[tuple, dict] = {}
    for image_id, (_, specs) in files.items():
        written = write_image_and_record(
            root / "Annotations" / f"{image_id}.mat", root / "Images" / f"{image_id}.JPEG", specs,
            None, np.random.default_rng([seed, hash_id(image_id)]), database="ImageNet")
        truth.update({(specs[i].category, "objectnet3d", image_id, i): t for i, t in written.items()})
    for split in ("train", "val", "test"):
        _write_list(root / "Image_sets" / f"{split}.txt", [i for i, (s, _) in files.items() if s == split])
    return truth


def write_benchmark_tree(root: str | Path, n_files: int) -> None:
    """`n_files` annotation files (car/chair x pascal/imagenet, 1-4 objects each) with lists and
    empty image files, for timing the indexer. Templates are encoded once and copied."""
    root = Path(root)
    S = ObjectSpec
    templates = {}
    for cls in ("car", "chair"):
        for k, specs in enumerate(([S(cls)], [S(cls), S("person", "other")],
                                   [S(cls), S(cls, truncated=True), S("person", "other")],
                                   [S(cls), S(cls, occluded=True), S(cls, difficult=True), S(cls, "zero")])):
            buffer = Path(root) / "_template.mat"
            write_image_and_record(buffer, None, specs, cls, np.random.default_rng(k), with_filename=False)
            templates[(cls, k)] = buffer.read_bytes()
            buffer.unlink()
    ids = {("car", "pascal"): [], ("chair", "pascal"): [], ("car", "imagenet"): [], ("chair", "imagenet"): []}
    for n in range(n_files):
        cls = ("car", "chair")[n % 2]
        source = ("pascal", "imagenet")[(n // 2) % 2]
        image_id = f"2009_{n:06d}" if source == "pascal" else f"{SYNSETS[cls]}_{n}"
        ids[(cls, source)].append(image_id)
        folder = root / "Annotations" / f"{cls}_{source}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{image_id}.mat").write_bytes(templates[(cls, (n // 4) % 4)])
        images = root / "Images" / f"{cls}_{source}"
        images.mkdir(parents=True, exist_ok=True)
        # Templates have no `filename`: the indexer then uses {id}.jpg / {id}.JPEG.
        (images / f"{image_id}{'.jpg' if source == 'pascal' else '.JPEG'}").touch()
    main = root / "PASCAL" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main"
    pascal_ids = sorted(ids[("car", "pascal")] + ids[("chair", "pascal")])
    _write_list(main / "train.txt", pascal_ids[::2])
    _write_list(main / "val.txt", pascal_ids[1::2])
    for cls in ("car", "chair"):
        imagenet_ids = ids[(cls, "imagenet")]
        _write_list(root / "Image_sets" / f"{cls}_imagenet_train.txt", imagenet_ids[::2])
        _write_list(root / "Image_sets" / f"{cls}_imagenet_val.txt", imagenet_ids[1::2])


__all__ = ["cad_model", "make_objectnet3d_fixture", "make_pascal3d_fixture", "silhouette",
           "write_benchmark_tree", "Pose", "ObjectSpec"]
