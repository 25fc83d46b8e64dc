"""The reproduction script end to end on its tiny profile (digits, one seed, two levels), so it cannot rot.

Checks the output layout (the main job's sweep files, deploys, claims, the generated block of
the report), that the claims are computed, that a second run resumes without redoing or
rewriting anything, and the command line's exits.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import pytest

from benchmarks import __main__ as bench_main
from benchmarks import reproduce
from study.results import SUMMARY_COLUMNS


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro")
    out, doc = root / "out", root / "REPRODUCTION.md"
    doc.write_text("# Reproduction\n\nHand-written text above.\n\n" + reproduce.MARK_BEGIN + "\nold\n"
                   + reproduce.MARK_END + "\n\nHand-written text below.\n", encoding="utf-8")
    rc = reproduce.main(["--profile", "tiny", "--out", str(out), "--doc", str(doc), "--workers", "0"])
    assert rc == 0
    return out, doc


def test_layout(run):
    out, _ = run
    for sweep in ("mnist", "speech", "device_pcm", "conventions/relative", "conventions/absolute",
                  "conventions/snr_db"):
        d = out / sweep
        for name in ("summary.csv", "results.h5", "heatmap.png", "sweep.json"):
            assert (d / name).is_file(), d / name
        assert list((d / "jobs").glob("*.json")) and list((d / "checkpoints").glob("*.pt"))
    with open(out / "mnist" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    assert {r["arch"] for r in rows} == {"lstm", "rnn"} and len(rows) == 2 * 2 * 2
    with h5py.File(out / "mnist" / "results.h5") as f:
        assert f["accuracy"].shape == (2, 2, 1, 2, 2)
        assert f.attrs["noise_convention"] == "relative"
    for preset in ("pcm",):  # the tiny profile deploys on pcm only (the full study: pcm and rram)
        for arch in ("lstm", "rnn"):
            for kind in ("conventional", "dni_paper", "dni_device", "dni_device_paper"):
                d = out / "deploy" / preset / f"{arch}_{kind}_seed0"
                assert (d / "deploy.h5").is_file() and (d / "command.json").is_file(), d
    assert len(list((out / "clean").glob("*/deploy.json"))) == 4
    for name in ("claims.json", "claims.md", "deploy_summary.csv", "deploy_pcm_lstm.png", "commands.txt",
                 "stages.json"):
        assert (out / name).is_file(), name
    stages = json.loads((out / "stages.json").read_text())["stages"]
    assert {k: v["status"] for k, v in stages.items()} == {s: "complete" for s in reproduce.STAGES}
    assert all(v["runs"][-1]["wall_s"] is not None for v in stages.values())


def test_claims_computed(run):
    out, doc = run
    claims = json.loads((out / "claims.json").read_text())
    for arch in ("lstm", "rnn"):
        res = claims["mnist"]["archs"][arch]
        for c in ("claim1", "claim2", "claim3"):
            assert res[c]["verdict"]  # one seed: "not measurable", but computed
        assert len(res["claim3"]["tests"]) == 1 and res["claim2"]["source"] == "clean"
        assert len(res["claim1"]["per_sigma_train"]) == 2
    assert claims["mnist"]["clean_n_test"] == 450  # the clean stage uses the whole digits test split
    assert set(claims["deploy"]["choice"]["best_sigma_train"]) == {"lstm", "rnn"}
    kinds = {(r["preset"], r["model"]) for r in claims["deploy"]["rows"]}
    assert kinds == {(p, k) for p in ("pcm",)
                     for k in ("conventional", "dni_paper", "dni_device", "dni_device_paper")}
    assert {(c["a"], c["b"]) for c in claims["deploy"]["comparisons"]} == {
        (a, b) for a in ("dni_device", "dni_device_paper") for b in ("dni_paper", "conventional")} | {
        ("dni_paper", "conventional")}
    assert claims["conventions/snr_db"]["convention"] == "snr_db"
    text = doc.read_text()
    assert text.startswith("# Reproduction\n\nHand-written text above.")
    assert text.rstrip().endswith("Hand-written text below.")
    assert "old\n" not in text and "Claim 3" in text and "xbarsim sweep" in text
    assert text.count(reproduce.MARK_BEGIN) == 1


def test_resume_skips_finished_work(run, capsys):
    out, doc = run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".h5", ".pt") or p.name == "deploy.json"}
    assert reproduce.main(["--profile", "tiny", "--out", str(out), "--doc", str(doc), "--workers", "0",
                           "--stages", "mnist,clean,deploy,device,device_deploy,conventions"]) == 0
    text = capsys.readouterr().out
    assert "running the rest" not in text and "jobs finished; skipped" in text
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before  # nothing rerun, nothing rewritten


def test_command_line(tmp_path, capsys):
    assert reproduce.main(["--help"]) == 0
    assert "--stages" in capsys.readouterr().out
    assert reproduce.main(["--stages", "nope", "--out", str(tmp_path)]) == 2
    assert bench_main.main(["reproduce", "--profile", "tiny", "--dry-run", "--stages", "mnist", "--out",
                            str(tmp_path / "dry"), "--doc", ""]) == 0
    assert "xbarsim sweep" in capsys.readouterr().out
    assert not (tmp_path / "dry" / "mnist").exists()


def test_report_from_a_partial_sweep(run, tmp_path):
    """The report aggregates finished jobs with `xbarsim sweep --max-jobs 0` and marks the claims partial."""
    import shutil

    out, _ = run
    part = tmp_path / "out"
    shutil.copytree(out / "mnist", part / "mnist")
    (part / "mnist" / "jobs" / "lstm_st0.2_seed0.json").unlink()
    assert reproduce.main(["--profile", "tiny", "--out", str(part), "--doc", str(tmp_path / "R.md"), "--workers", "0",
                           "--stages", "report"]) == 0
    with h5py.File(part / "mnist" / "results.h5") as f:
        assert f.attrs["n_jobs_finished"] == 3
    claims = json.loads((part / "claims.json").read_text())
    assert claims["mnist"]["n_jobs_finished"] == 3 and "deploy" not in claims
    assert "Partial data (3 of 4 jobs)" in (part / "claims.md").read_text()
    commands = json.loads((part / "stages.json").read_text())["stages"]["report"]["commands"]
    assert any("--max-jobs 0" in c for c in commands)


def test_two_processes_keep_each_others_stages(tmp_path):
    """A report run beside the running study must not erase its stages in stages.json, nor the reverse."""
    a, b = reproduce.Runner(tmp_path, 0), reproduce.Runner(tmp_path, 0)
    a.stage("mnist")["status"] = "running"
    a.save()
    b.stage("report")["status"] = "complete"
    b.save()
    a.stage("mnist")["status"] = "complete"
    a.save()
    stages = json.loads((tmp_path / "stages.json").read_text())["stages"]
    assert stages["mnist"]["status"] == "complete" and stages["report"]["status"] == "complete"


def test_glance_names_the_better_dni_flavour(run):
    """The 'At a glance' deployment table says which DNI flavour holds up, only when the paired CI excludes 0."""
    out, doc = run
    assert "### At a glance" in doc.read_text() and "fails** the 97% bar" in doc.read_text()  # tiny: an untrained LSTM
    rows = [{"preset": "pcm", "arch": "lstm", "model": m, "drift_compensation": False, "time_s": 1.0,
             "mean": a, "ci_low": a - 0.01, "ci_high": a + 0.01, "n": 3}
            for m, a in (("conventional", 0.5), ("dni_paper", 0.6), ("dni_device", 0.7), ("dni_device_paper", 0.55))]

    def cmp(a, b, diffs):
        return dict(reproduce.paired_ci(diffs), preset="pcm", arch="lstm", a=a, b=b, drift_compensation=False,
                    time_s=1.0)

    def cells(comparisons):
        table = reproduce.deploy_verdicts({"times_s": [1.0], "rows": rows, "comparisons": comparisons})
        assert len(table) == 3
        header = [c.strip() for c in table[0].strip("|").split("|")]
        return dict(zip(header, (c.strip() for c in table[2].strip("|").split("|"))))

    c = cells([cmp("dni_device", "dni_paper", [0.09, 0.10, 0.11]), cmp("dni_paper", "conventional", [-0.05, 0.10, 0.02]),
               cmp("dni_device_paper", "dni_paper", [-0.04, -0.05, -0.06])])
    assert c["conventional"] == "50.00 [49.00, 51.00]" and c["DNI, device + paper noise"].startswith("55.00")
    assert c["device vs paper noise (pp)"].startswith("+10.00 [") and c["paper-noise DNI vs conventional"].startswith(
        "+2.33 [")
    row = [x.strip() for x in reproduce.deploy_verdicts({"times_s": [1.0], "rows": rows, "comparisons": [
        cmp("dni_device", "dni_paper", [0.09, 0.10, 0.11]),
        cmp("dni_device_paper", "dni_paper", [-0.04, -0.05, -0.06])]})[2].strip("|").split("|")]
    assert row[9] == "**device noise**" and row[11] == "**paper noise**", row
    row = [x.strip() for x in reproduce.deploy_verdicts({"times_s": [1.0], "rows": rows, "comparisons": [
        cmp("dni_device", "dni_paper", [-0.09, 0.10, 0.01]),
        cmp("dni_device_paper", "dni_paper", [0.04, 0.05, 0.06])]})[2].strip("|").split("|")]
    assert row[9] == "no resolved difference" and row[11] == "**device + paper noise**", row
    row = [x.strip() for x in reproduce.deploy_verdicts({"times_s": [1.0], "rows": rows, "comparisons": []})[2]
           .strip("|").split("|")]
    assert row[9] == row[11] == "n/a" and row[8] == "-", row
