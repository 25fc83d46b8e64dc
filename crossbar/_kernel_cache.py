"""Drop numba's on-disk kernel caches of crossbar when any kernel module changed.

numba keys a cached kernel on the source file that defines it (its modification time and
size) and nothing else: a kernel of ``_kernels.py`` that calls ``_normals.fill_normals``
keeps the compiled old ``fill_normals`` after ``_normals.py`` changes (a ``git pull`` in an
editable install), silently. So at import, crossbar hashes the sources of its kernel modules
(:data:`KERNEL_MODULES`); when the hash differs from the one stamped beside the caches, it
deletes every crossbar cache file there (``*.nbi``, ``*.nbc``) before any kernel loads, and
stamps the new hash. The next call of each kernel compiles it afresh (as after any edit).
A cache directory that cannot be written (a read-only install) is left as it is.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: the crossbar modules that define numba kernels (``cache=True``) or are inlined into them
KERNEL_MODULES = ("_kernels.py", "_normals.py", "_program_kernels.py", "_fused_noise.py")
STAMP = "kernels.stamp"


def sources_hash(package_dir: Path) -> str:
    """SHA-256 over the kernel modules' names and bytes (a missing one counts as empty)."""
    h = hashlib.sha256()
    for name in KERNEL_MODULES:
        p = package_dir / name
        h.update(name.encode())
        h.update(p.read_bytes() if p.exists() else b"")
    return h.hexdigest()


def drop_stale_caches(package_dir: Path, cache_dir: Path | None = None) -> int:
    """Delete the numba cache files of ``cache_dir`` (default: ``package_dir/__pycache__``,
    made if missing) when the kernel sources changed since the stamp there, and stamp it;
    returns how many were deleted (0 when the stamp matches, or the directory cannot be
    made or written)."""
    cache_dir = package_dir / "__pycache__" if cache_dir is None else cache_dir
    digest = sources_hash(package_dir)
    stamp = cache_dir / STAMP
    try:
        if stamp.read_text() == digest:
            return 0
    except OSError:
        pass
    removed = 0
    try:
        # no directory yet (no caches to drop): made now, so that numba's first caches are
        # stamped and not dropped by the next import
        cache_dir.mkdir(exist_ok=True)
        for p in list(cache_dir.glob("*.nbi")) + list(cache_dir.glob("*.nbc")):
            p.unlink(missing_ok=True)
            removed += 1
        tmp = stamp.with_name(f"{STAMP}.{os.getpid()}.tmp")
        tmp.write_text(digest)
        os.replace(tmp, stamp)
    except OSError:
        return removed
    return removed
