"""crossbar._kernel_cache: numba's on-disk caches are dropped when a kernel module changed
(numba itself only looks at the file that defines a kernel, not at the ones it calls)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import crossbar
from crossbar import _kernel_cache as KC


@pytest.fixture
def pkg(tmp_path):
    """A copy of crossbar's kernel modules with a cache directory holding stale-looking files."""
    src = Path(crossbar.__file__).parent
    for name in KC.KERNEL_MODULES:
        shutil.copy(src / name, tmp_path / name)
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    for name in ("_kernels.fill-1.py311.nbi", "_kernels.fill-1.py311.1.nbc", "_normals.x.py311.nbi"):
        (cache / name).write_bytes(b"cached")
    (cache / "_kernels.cpython-311.pyc").write_bytes(b"bytecode")
    return tmp_path


def _nb(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.suffix in (".nbi", ".nbc"))


def test_no_stamp_drops_every_numba_cache_file_and_stamps(pkg):
    cache = pkg / "__pycache__"
    assert KC.drop_stale_caches(pkg) == 3
    assert _nb(cache) == []
    assert (cache / "_kernels.cpython-311.pyc").exists()  # only numba's files go
    assert (cache / KC.STAMP).read_text() == KC.sources_hash(pkg)


def test_a_matching_stamp_keeps_the_caches(pkg):
    cache = pkg / "__pycache__"
    (cache / KC.STAMP).write_text(KC.sources_hash(pkg))
    assert KC.drop_stale_caches(pkg) == 0
    assert len(_nb(cache)) == 3


@pytest.mark.parametrize("name", KC.KERNEL_MODULES)
def test_a_change_in_any_kernel_module_drops_them(pkg, name):
    """One byte more in any of the modules (e.g. _normals.py, which _kernels.py's kernels
    call) changes the hash, and the caches go."""
    cache = pkg / "__pycache__"
    (cache / KC.STAMP).write_text(KC.sources_hash(pkg))
    with open(pkg / name, "a") as f:
        f.write("\n# changed\n")
    assert KC.sources_hash(pkg) != (cache / KC.STAMP).read_text()
    assert KC.drop_stale_caches(pkg) == 3
    assert _nb(cache) == []
    assert KC.drop_stale_caches(pkg) == 0  # stamped again


def test_a_missing_cache_dir_is_made_and_stamped(pkg, tmp_path):
    """No cache directory yet (first import without bytecode): made and stamped, so the
    caches numba writes next are not dropped by the following import."""
    d = tmp_path / "fresh"
    assert KC.drop_stale_caches(pkg, cache_dir=d) == 0
    assert (d / KC.STAMP).read_text() == KC.sources_hash(pkg)
    (d / "k.nbi").write_bytes(b"cached")
    assert KC.drop_stale_caches(pkg, cache_dir=d) == 0
    assert (d / "k.nbi").exists()


def test_unwritable_cache_dir_is_left_alone(pkg, tmp_path, monkeypatch):
    assert KC.drop_stale_caches(pkg, cache_dir=tmp_path / "no" / "parent") == 0  # cannot be made

    def refuse(self, missing_ok=False):
        raise PermissionError(f"read-only: {self}")

    monkeypatch.setattr(Path, "unlink", refuse)
    assert KC.drop_stale_caches(pkg) == 0           # no error; nothing removed
    assert len(_nb(pkg / "__pycache__")) == 3
    assert not (pkg / "__pycache__" / KC.STAMP).exists()


def test_importing_crossbar_stamped_its_own_cache():
    """The package's cache directory carries the stamp of the current sources (it was
    checked at import), where it can be written."""
    here = Path(crossbar.__file__).parent
    stamp = here / "__pycache__" / KC.STAMP
    if not stamp.exists():
        pytest.skip("crossbar's __pycache__ is not writable here")
    assert stamp.read_text() == KC.sources_hash(here)
