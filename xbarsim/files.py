"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half.

Every result xbarsim writes goes through here: the data is written to a temp file in the
target's folder (``.<name>.<random>.tmp``), flushed and fsynced, then moved over the target
with ``os.replace``. The file gets the mode a plain ``open()`` would give it (0666 minus
the process umask), not mkstemp's 0600. On any error, Ctrl-C included, the temp file is
removed and the target is untouched.

    >>> from xbarsim.files import atomic_write_text, atomic_path
    >>> atomic_write_text("out/summary.csv", "a,b\\n1,2\\n")          # doctest: +SKIP
    >>> with atomic_path("out/results.h5") as tmp:                    # doctest: +SKIP
    ...     with h5py.File(tmp, "w") as f: ...
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "remove_stale_temps",
           "TEMP_SUFFIX"]

#: suffix of every temp file this module creates (``.<target name>.<random>.tmp``)
TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path beside ``path``; on a clean exit, fsync it and move it over ``path``.

    For writers that want a file name (h5py, matplotlib's savefig, torch.save). ``suffix``
    is appended to the temp name, for writers that infer the format from it (``".png"``).
    The folder is created if missing. On an exception the temp file is removed and the
    exception re-raised; ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, default: Callable[[Any], Any] | None = None,
                      indent: int | None = 2) -> None:
    """Write ``obj`` as JSON (``allow_nan=False``: NaN/Inf are an error, not invalid JSON) atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, default=default, allow_nan=False) + "\n")


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete temp files this module left in ``folder`` (a killed writer's ``.<name>.*.tmp*``).

    Only call this where no other writer is active in ``folder`` (e.g. under a run lock).
    Returns the paths removed.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in folder.glob(".*" + TEMP_SUFFIX + "*"):
        if p.is_file():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed
