"""The project's one file writer: every file is written whole or not at all.

A file is written under a temporary name in its own folder, flushed and fsynced, renamed onto its
final name (atomic on POSIX), and the folder is fsynced so the rename itself survives a crash. A
reader therefore sees either the previous file or the complete new one, never a partial file,
even after kill -9 or a power cut. A failed write (a full disk, say) removes the temporary file,
leaves the previous file intact and raises OSError naming the path.

    with atomic_open("records.csv", "w") as f:    # any writer that takes a file object
        f.write(text)
    atomic_write_bytes(path, data); atomic_write_text(path, text); atomic_write_json(path, obj)
    atomic_save_npy(path, array)

Temporary names are `.NAME.tmp-PID-N`, so `remove_temporaries(folder)` can delete what a
killed writer left behind.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from pathlib import Path
from typing import IO, Any, Iterator

_COUNTER = itertools.count()
TEMP_MARK = ".tmp-"


def temporary_name(path: Path) -> Path:
    """A unique temporary path beside `path` (same folder, so the rename stays atomic)."""
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{next(_COUNTER)}")


def fsync_folder(folder: Path) -> None:
    """fsync a folder so a rename into it is durable (a no-op where folders cannot be opened)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened; the rename is still atomic
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it replaces `path` durably.

    `mode` is "w" (text, newline handling as `open`) or "wb". On an exception the temporary file
    is removed and `path` is left as it was. Missing parent folders are created.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
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
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
            raise OSError(error.errno, f"cannot write {path}: {error.strerror or error}") from error
        raise
    fsync_folder(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically and durably."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically and durably."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, sort_keys: bool = False) -> None:
    """Write `obj` as indented JSON (with a final newline) atomically and durably."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def atomic_save_npy(path: str | Path, array) -> None:
    """`np.save` to `path` atomically and durably (the path is used as given: no .npy added)."""
    import numpy as np

    with atomic_open(path, "wb") as handle:
        np.save(handle, array)


def remove_temporaries(folder: str | Path, prefix: str = "") -> int:
    """Delete temporary files that killed writers left in `folder` (names `.{prefix}*.tmp-*`);
    returns how many were removed."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for path in folder.glob(f".{prefix}*{TEMP_MARK}*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


__all__ = ["atomic_open", "atomic_save_npy", "atomic_write_bytes", "atomic_write_json",
           "atomic_write_text", "fsync_folder", "remove_temporaries", "temporary_name"]
