"""The project's one file writer: every file is written whole or not at all.

A file is written under a temporary name in its own folder, flushed and fsynced, renamed onto its
final name (atomic on POSIX), and the folder is fsynced so the rename itself survives a crash. A
reader therefore sees either the previous file or the complete new one, never a partial file,
even after kill -9 or a power cut. A failed write (a full disk, say) removes the temporary file,
leaves the previous file intact and raises one OSError (same errno) whose message names the path.

    with atomic_open("records.csv", "w", newline="") as f:   # any writer that takes a file object
        csv.writer(f).writerows(rows)                          # (torch.save, onnx.save_model, ...)
    atomic_write_bytes(path, data); atomic_write_text(path, text); atomic_write_json(path, obj)
    atomic_save_npy(path, array); atomic_write_image("overlay.png", rgb)

Temporary names are `.NAME.tmp-PID-N`, so `remove_temporaries(folder)` can delete what a
killed writer left behind. Matplotlib figures: `fig.savefig(buffer := io.BytesIO(), format="png")`
then `atomic_write_bytes(path, buffer.getvalue())`.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
from pathlib import Path
from typing import IO, Any, Callable, Iterator

_COUNTER = itertools.count()
TEMP_MARK = ".tmp-"
_TEMP_PID = re.compile(re.escape(TEMP_MARK) + r"(\d+)")

#: errno values of a folder fsync that only mean "this file system does not sync folders".
_FOLDER_SYNC_UNSUPPORTED = {errno.EINVAL, errno.EBADF, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP}

#: Image formats `atomic_write_image` encodes, chosen by the path's suffix.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def temporary_name(path: Path) -> Path:
    """A unique temporary path beside `path` (same folder, so the rename stays atomic)."""
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{next(_COUNTER)}")


def fsync_folder(folder: Path) -> None:
    """fsync a folder so a rename into it is durable.

    A no-op where folders cannot be opened or synced (Windows, some network file systems); any
    other failure (EIO, ENOSPC) raises an OSError naming the folder.
    """
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened; the rename is still atomic
        return
    try:
        os.fsync(handle)
    except OSError as error:
        if error.errno not in _FOLDER_SYNC_UNSUPPORTED:
            raise OSError(error.errno, f"cannot sync folder {folder}: {error.strerror or error}") from error
    finally:
        os.close(handle)


def _failed_write(error: BaseException, temp: Path) -> OSError | None:
    """The OSError of writing, syncing or renaming `temp` behind `error`, or None.

    Errors of the write itself carry no file name or the temporary one; an OSError about another
    file (the body reading its input, say) is not one. Some libraries replace the OSError while
    cleaning up (torch.save's zip writer raises RuntimeError "unexpected pos"), so the exceptions
    it was raised during (`__context__`) are searched too.
    """
    if not isinstance(error, Exception):  # KeyboardInterrupt, SystemExit: pass them on as they are
        return None
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, OSError):
            return error if error.filename in (None, str(temp)) else None
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def _names_the_path(error: OSError, path: Path) -> OSError:
    """`error` again as one OSError (same errno, so the same subclass) whose message names `path`."""
    reason = error.strerror or str(error) or type(error).__name__
    if error.errno is None:
        return OSError(f"cannot write {path}: {reason}")
    return OSError(error.errno, f"cannot write {path}: {reason}")


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it replaces `path` durably.

    `mode` is "w" (text, UTF-8 unless `encoding` is given, newline handling as `open`) or "wb".
    On an exception the temporary file is removed and `path` is left as it was; a failure to
    write, sync or rename (also one a library wrapped in another exception) is raised as one
    OSError with the same errno whose message names `path`. Missing parent folders are created.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    if mode == "w":
        open_kwargs.setdefault("encoding", "utf-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temporary_name(path)
    try:
        with open(temp, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temp.unlink()
        write_error = _failed_write(error, temp)
        if write_error is not None:
            raise _names_the_path(write_error, path) from error
        raise
    fsync_folder(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically and durably."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically and durably."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, sort_keys: bool = False,
                      default: Callable[[Any], Any] | None = None) -> None:
    """Write `obj` as indented JSON (with a final newline) atomically and durably.

    `default` converts objects json cannot (as in `json.dumps`, e.g. `default=float` for numpy
    scalars).
    """
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys, default=default) + "\n")


def atomic_save_npy(path: str | Path, array) -> None:
    """`np.save` to `path` atomically and durably (the path is used as given: no .npy added)."""
    import numpy as np

    with atomic_open(path, "wb") as handle:
        np.save(handle, array)


def atomic_write_image(path: str | Path, image, color_order: str = "rgb") -> Path:
    """Encode a uint8 image with OpenCV in the format of the path's suffix; write it atomically.

    image: (H, W) grey, (H, W, 3) or (H, W, 4) with alpha; `color_order` says whether its colour
    channels are "rgb" (the project's order) or "bgr" (OpenCV's). Returns the path.
    """
    import cv2
    import numpy as np

    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: image suffix {path.suffix!r} is not one of {IMAGE_SUFFIXES}")
    if color_order not in ("rgb", "bgr"):
        raise ValueError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ValueError(f"{path}: need a uint8 (H, W), (H, W, 3) or (H, W, 4) image, "
                         f"got {image.dtype} {image.shape}")
    if image.ndim == 3 and color_order == "rgb":
        image = image[..., [2, 1, 0, 3][: image.shape[2]]]
    ok, encoded = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(image))
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode a {image.shape} image as {path.suffix}")
    atomic_write_bytes(path, encoded.tobytes())
    return path


def _writer_is_running(temp: Path) -> bool:
    """True when the process named in a temporary file's name still runs on this machine."""
    match = _TEMP_PID.search(temp.name)
    if match is None or os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except (ProcessLookupError, OverflowError):  # no such process (or no such pid at all)
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_temporaries(folder: str | Path, prefix: str = "") -> int:
    """Delete temporary files that killed writers left in `folder` (names `.{prefix}*.tmp-*`).

    A temporary whose writer process is still running on this machine is kept, so a cleanup
    never breaks a write in progress. Returns how many files were removed.
    """
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for path in folder.glob(f".{prefix}*{TEMP_MARK}*"):
        if _writer_is_running(path):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


__all__ = ["IMAGE_SUFFIXES", "atomic_open", "atomic_save_npy", "atomic_write_bytes", "atomic_write_image",
           "atomic_write_json", "atomic_write_text", "fsync_folder", "remove_temporaries", "temporary_name"]
