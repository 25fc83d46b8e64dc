"""``xbarsim bench normals``: a tiny run prints every generator row and writes one JSON record
per (generator, n) with consistent ratios; bad arguments exit 2 with a one-line reason."""
from __future__ import annotations

import json

import pytest

from benchmarks import __main__ as bench_main

TINY = ["normals", "--sizes", "16,33", "--rows", "2", "--repeat", "3", "--sample-ms", "0.05", "--no-torch"]


def test_bench_normals_table_and_json(tmp_path, capsys):
    path = tmp_path / "normals.json"
    assert bench_main.main([*TINY, "--json", str(path)]) == 0
    out = capsys.readouterr().out
    for name in ("boxmuller", "ziggurat", "numpy", "boxmuller_in_kernel", "ziggurat_block"):
        assert name in out
    assert "torch: skipped (--no-torch)" in out
    data = json.loads(path.read_text())
    assert data["meta"]["benchmark"] == "normals" and data["meta"]["sizes"] == [16, 33]
    records = data["records"]
    assert len(records) == 2 * 5
    by = {(r["name"], r["n"]): r for r in records}
    for n in (16, 33):
        assert by[("boxmuller", n)]["ratio"] == 1.0 and by[("boxmuller_in_kernel", n)]["ratio"] == 1.0
        assert by[("boxmuller_in_kernel", n)]["normals_per_call"] == 2 * n
        for name in ("ziggurat", "numpy"):
            r = by[(name, n)]
            assert r["ns_per_normal"] > 0
            assert r["ratio"] == pytest.approx(r["ns_per_normal"] / by[("boxmuller", n)]["ns_per_normal"])


@pytest.mark.parametrize("argv, words", [
    (["--sizes", "0,16"], ["--sizes", "'0,16'"]),
    (["--sizes", "a"], ["--sizes", "'a'"]),
    (["--repeat", "2"], ["--repeat", ">= 3"]),
    (["--rows", "0"], ["--rows", ">= 1"]),
    (["--seed", "-1"], ["--seed", "got -1"]),
])
def test_bench_normals_bad_arguments_exit_2(argv, words, capsys):
    assert bench_main.main(["normals", *argv]) == 2
    err = capsys.readouterr().err
    assert "usage: xbarsim bench normals" in err
    for word in words:
        assert word in err, (word, err)
