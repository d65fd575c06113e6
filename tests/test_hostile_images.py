"""Hostile and broken image files: the size is read from the header and checked before decoding,
and every failure is one line naming the file and the cause, while the rest of a batch goes on.

Met by users through `predict` (files and folders), `pascal3d` (the tree's JPEGs) and `render
--backgrounds` (photo folders); all three read through `data_tools.image.preprocess.load_image_rgb`.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from data_tools.image.header import ImageTooLarge, read_image_header
from data_tools.image.preprocess import DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_ENV, load_image_rgb
from posenet_mlvae.cli import main

HUGE = 60000  # a header claiming HUGE x HUGE pixels: 3.6 GP, 10.8 GB as RGB


def rgb(seed: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def encoded(suffix: str, image: np.ndarray, params=()) -> bytes:
    ok, data = cv2.imencode(suffix, image, list(params))
    assert ok
    return data.tobytes()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


# ----------------------------------------------------------------------------- header sizes


@pytest.mark.parametrize("suffix,params", [
    (".png", ()), (".jpg", ()), (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)), (".bmp", ()),
    (".webp", ()), (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101)), (".tiff", ()), (".gif", ()),
    (".ppm", ()), (".pgm", ()), (".pbm", ())])
@pytest.mark.parametrize("height,width", [(1, 1), (37, 53), (17, 300)])
def test_header_size_matches_the_decoded_image(suffix, params, height, width):
    image = rgb(height * width, height, width)
    if suffix in (".pgm", ".pbm"):
        image = image[:, :, 0]
    data = encoded(suffix, image, params)
    header = read_image_header(data)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert (header.height, header.width) == decoded.shape[:2] == (height, width)


def test_header_sizes_of_files_written_by_pillow():
    """An independent writer: Pillow's WebP with alpha (VP8X), GIF, big-endian TIFF, JPEG + EXIF."""
    Image = pytest.importorskip("PIL.Image")
    cases = [("WEBP", "RGBA", {}), ("GIF", "P", {}), ("TIFF", "RGB", {"tiffinfo": {}}),
             ("JPEG", "RGB", {"exif": b"Exif\x00\x00" + b"MM\x00*\x00\x00\x00\x08" + b"\x00" * 6}),
             ("PNG", "LA", {}), ("BMP", "RGB", {}), ("PPM", "RGB", {})]
    for fmt, mode, options in cases:
        for size in ((5, 3), (123, 45)):
            buffer = io.BytesIO()
            Image.new(mode, size).save(buffer, fmt, **options)
            header = read_image_header(buffer.getvalue())
            assert (header.width, header.height) == size, fmt
    buffer = io.BytesIO()
    Image.new("RGB", (77, 31)).save(buffer, "TIFF", big_tiff=True)
    header = read_image_header(buffer.getvalue())
    assert (header.format, header.width, header.height) == ("TIFF", 77, 31)


# ----------------------------------------------------------------------------- hostile headers


def hostile_files() -> dict[str, bytes]:
    """Small files whose headers claim HUGE x HUGE pixels, one per format."""
    jpeg = bytearray(encoded(".jpg", rgb(0, 8, 8)))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", HUGE, HUGE)
    bmp = bytearray(encoded(".bmp", rgb(0, 8, 8)))
    bmp[18:26] = struct.pack("<ii", HUGE, HUGE)
    webp = b"VP8X" + struct.pack("<I", 10) + b"\0" * 4 + (HUGE - 1).to_bytes(3, "little") * 2
    tiff_entries = [(256, 3, 1, HUGE), (257, 3, 1, HUGE), (258, 3, 1, 8), (277, 3, 1, 1)]
    tiff = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(tiff_entries)) + b"".join(
        struct.pack("<HHIHH", tag, kind, count, value, 0) for tag, kind, count, value in tiff_entries
    ) + b"\0\0\0\0"
    return {
        "huge.png": b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", HUGE, HUGE, 8, 2, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""),
        "huge.jpg": bytes(jpeg),
        "huge.bmp": bytes(bmp),
        "huge.webp": b"RIFF" + struct.pack("<I", 4 + len(webp)) + b"WEBP" + webp,
        "huge.tiff": tiff,
        "huge.gif": b"GIF89a" + struct.pack("<HHBBB", HUGE, HUGE, 0, 0, 0) + b";",
        "huge.ppm": b"P6\n# a comment\n%d %d\n255\n" % (HUGE, HUGE) + b"\0" * 16,
    }


@pytest.mark.parametrize("name", sorted(hostile_files()))
def test_hostile_header_is_refused_before_decoding(name, tmp_path, monkeypatch):
    path = tmp_path / name
    path.write_bytes(hostile_files()[name])
    with pytest.raises(ImageTooLarge, match=f"of {HUGE} x {HUGE} = 3600 MP is over the 3600 MP"):
        read_image_header(path.read_bytes(), max_pixels=HUGE * HUGE - 1)

    def never(*args, **kwargs):
        raise AssertionError("cv2.imdecode was called on a file over the pixel limit")

    monkeypatch.setattr(cv2, "imdecode", never)
    with pytest.raises(ValueError) as info:
        load_image_rgb(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert f"{HUGE} x {HUGE}" in message and "decode limit" in message and MAX_IMAGE_PIXELS_ENV in message


def test_the_limit_is_exact_and_can_be_changed(tmp_path, monkeypatch):
    path = tmp_path / "forty_by_fifty.png"
    path.write_bytes(encoded(".png", rgb(1, 40, 50)))
    assert load_image_rgb(path, max_pixels=2000).shape == (40, 50, 3)
    with pytest.raises(ValueError, match="PNG of 50 x 40 = 0.002 MP is over the 0.001999 MP decode limit"):
        load_image_rgb(path, max_pixels=1999)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "1999")
    with pytest.raises(ValueError, match="decode limit"):
        load_image_rgb(path)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "2e3")
    assert load_image_rgb(path).shape == (40, 50, 3)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=f"{MAX_IMAGE_PIXELS_ENV}='lots' is not a number"):
        load_image_rgb(path)
    monkeypatch.delenv(MAX_IMAGE_PIXELS_ENV)
    assert DEFAULT_MAX_IMAGE_PIXELS == 100_000_000
    assert load_image_rgb(path).shape == (40, 50, 3)


def test_a_file_larger_than_any_allowed_image_is_not_read(tmp_path, monkeypatch):
    path = tmp_path / "sparse.png"
    with open(path, "wb") as f:
        f.truncate(200 * 2**20)  # sparse: costs no disk
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("the file was read"))
    with pytest.raises(ValueError, match="210 MB is more than any image within the 1,000-pixel"):
        load_image_rgb(path, max_pixels=1000)


# ----------------------------------------------------------------------------- broken files


def broken_files(tmp_path) -> dict[str, str]:
    """name -> a word of the cause each must report; written into tmp_path."""
    png = encoded(".png", rgb(2, 30, 40))
    corrupt = bytearray(png)
    corrupt[60] ^= 0xFF  # inside IDAT: its CRC no longer matches
    causes = {
        "empty.png": (b"", "empty file"),
        "cut.png": (png[:len(png) // 2], "truncated PNG"),
        "cut.jpg": (encoded(".jpg", rgb(3, 30, 40))[:400], "truncated JPEG"),
        "cut.bmp": (encoded(".bmp", rgb(4, 30, 40))[:500], "truncated BMP"),
        "cut.webp": (encoded(".webp", rgb(5, 30, 40))[:300], "truncated WebP"),
        "cut.gif": (encoded(".gif", rgb(6, 30, 40))[:200], "truncated GIF"),
        "cut.tiff": (encoded(".tiff", rgb(7, 30, 40))[:100], "truncated TIFF"),
        "crc.png": (bytes(corrupt), "CRC"),
        "text.png": (b"<html>this is a web page</html>", "unknown image format"),
        "huge.png": (hostile_files()["huge.png"], "decode limit"),
    }
    for name, (data, _) in causes.items():
        (tmp_path / name).write_bytes(data)
    return {name: cause for name, (_, cause) in causes.items()}


def test_every_broken_file_is_one_line_and_the_batch_goes_on(tmp_path):
    """Through the installed CLI, in a fresh process: stderr holds exactly one line per bad file
    (naming it and the cause), the summary and the provider line; nothing from OpenCV."""
    from test_serving import write_pose_model

    model = write_pose_model(tmp_path / "model" / "pose.onnx")
    folder = tmp_path / "photos"
    folder.mkdir()
    causes = broken_files(folder)
    for k in range(3):
        (folder / f"good{k}.png").write_bytes(encoded(".png", rgb(10 + k, 30, 40)))
    missing = tmp_path / "missing.jpg"
    done = subprocess.run([sys.executable, "-m", "posenet_mlvae.cli", "predict", "--model", str(model),
                           str(folder), str(missing), "--json", "--providers", "CPUExecutionProvider",
                           "--no-progress"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    skips = [line for line in lines if line.startswith("skipped ")]
    others = [line for line in lines if not line.startswith("skipped ")]
    assert len(skips) == len(causes) + 1, done.stderr
    for name, cause in causes.items():
        [line] = [s for s in skips if f"{folder / name}: " in s]
        assert cause in line, line
    assert any(f"{missing}: no such file" in s for s in skips)
    assert len(others) == 2 and any("predicted 3 of 14 images (11 skipped)" in o for o in others), others
    assert "Traceback" not in done.stderr and "validateInputImageSize" not in done.stderr
    assert len(done.stdout.splitlines()) == 14  # one JSON line per input, skipped ones included


def test_predict_limit_flag_and_environment(tmp_path, capsys, monkeypatch):
    from test_serving import write_pose_model

    model = str(write_pose_model(tmp_path / "pose.onnx"))
    image = tmp_path / "small.png"
    image.write_bytes(encoded(".png", rgb(1, 40, 50)))
    assert main(["predict", "--model", model, str(image), "--max-image-pixels", "1999"]) == 1
    assert "decode limit" in capsys.readouterr().err
    assert main(["predict", "--model", model, str(image), "--max-image-pixels", "2000"]) == 0
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "1999")
    assert main(["predict", "--model", model, str(image)]) == 1
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "many")
    assert main(["predict", "--model", model, str(image)]) == 2
    err = capsys.readouterr().err
    assert f"posenet-mlvae predict: error: {MAX_IMAGE_PIXELS_ENV}='many'" in err and "Traceback" not in err


def test_npy_input_claiming_a_huge_shape_is_refused(tmp_path, capsys):
    from test_serving import write_pose_model

    model = str(write_pose_model(tmp_path / "pose.onnx"))
    path = tmp_path / "huge.npy"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1, 3), np.uint8))
    header["shape"] = (HUGE, HUGE, 3)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    assert main(["predict", "--model", model, str(path)]) == 1
    [line] = [s for s in capsys.readouterr().err.splitlines() if s.startswith("skipped")]
    assert str(path) in line


# ----------------------------------------------------------------------------- pascal3d, backgrounds


def test_pascal3d_build_skips_a_hostile_image_and_counts_it(tmp_path, capsys):
    from data_tools.pascal3d import miniature as fx

    root = tmp_path / "PASCAL3D+"
    fx.make_pascal3d_fixture(root)
    argv = ["pascal3d", "--root", str(root), "--category", "car", "--workers", "1", "--no-progress"]
    assert main(argv + ["--out", str(tmp_path / "before")]) == 0
    before = capsys.readouterr()
    hostile = root / "Images" / "car_pascal" / "2008_000001.jpg"  # a clean test object
    hostile.write_bytes(hostile_files()["huge.png"])
    assert main(argv + ["--out", str(tmp_path / "after")]) == 0
    after = capsys.readouterr()
    [line] = [s for s in after.err.splitlines() if str(hostile) in s]
    assert line.startswith("skipped: ") and f"{HUGE} x {HUGE}" in line and "decode limit" in line

    def test_split_counts(out: str) -> tuple[int, int]:
        test_block = out.split("test:", 1)[1].split("\n\n", 1)[0]
        kept = int(test_block.split(" objects ->", 1)[0])
        unreadable = test_block.split("skipped unreadable_image: ")
        return kept, int(unreadable[1].split()[0]) if len(unreadable) > 1 else 0

    kept_before, unreadable_before = test_split_counts(before.out)
    assert test_split_counts(after.out) == (kept_before - 1, unreadable_before + 1)


def test_render_backgrounds_skip_a_hostile_photo(tmp_path, capsys):
    from gl_support import EGL_PROBLEM

    if EGL_PROBLEM is not None:
        pytest.skip(f"no EGL context: {EGL_PROBLEM}")
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(2):
        (photos / f"photo{k}.png").write_bytes(encoded(".png", rgb(20 + k, 90, 120)))
    (photos / "huge.png").write_bytes(hostile_files()["huge.png"])
    code = main(["render", "--instances", "2", "--views", "4", "--out", str(tmp_path / "data"),
                 "--backgrounds", str(photos), "--workers", "1", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0
    [line] = [s for s in captured.err.splitlines() if "huge.png" in s]
    assert f"{HUGE} x {HUGE}" in line and "decode limit" in line
    assert "skipped 1 unreadable background images" in captured.out
