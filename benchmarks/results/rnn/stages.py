"""Where one analog training step goes, per stage, as in ``xbarsim bench rnn`` (issue 16),
including the stages of the boxmuller paper path, ``crossbar.StepNoise`` calls (normals +
noise add of the recurrent reads, "noise kernel") and ``crossbar.lstm_cell_update`` /
``lstm_hidden`` ("cell kernels"), each wrapped only where the tree has it (so the script runs
on older trees too; it was paper_stages.py for the s19 records, the same code).

Usage (one thread per pool, as the benchmark)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
        PYTHONPATH=<tree> python stages.py pcm lstm,gru,rnn 20

For each architecture: the analog layer (28 -> 128, T 28, B 64, SGD, loss on the last
output, as the benchmark) and its torch twin step alternately; the analog step is split by
wrapping (self time, nested wrapped calls subtracted): ``crossbar.program`` /
``program_and_prepare`` and ``ProgrammedArray._state`` (programming + read state),
``MatrixReader.__call__`` with several steps (input projection) or one (recurrent reads,
also ``MatrixReader.read_one``), ``MatrixReader.sequence_draws`` (torch normals of the
digital recurrence); the rest of the forward is the gate arithmetic and bookkeeping.
Prints medians over the repeats as ratios to the torch step's median. Works on trees
before and after ``program_and_prepare`` / ``read_one`` existed (4e3dc05 and later).
"""
import collections
import statistics
import sys
import time

import torch

import crossbar
import crossbar.array as CA
import models
import models.linear as ML
import models.reader as MR
from xbarsim.threads import limit_threads

acc: dict[str, float] = collections.defaultdict(float)
_stack: list[float] = []


def wrap(obj, name, label):
    """Accumulate the self time of ``obj.name`` under ``label`` (a name, or a function of the args)."""
    f = getattr(obj, name)

    def g(*a, **k):
        _stack.append(0.0)
        t0 = time.perf_counter()
        r = f(*a, **k)
        dt = time.perf_counter() - t0
        child = _stack.pop()
        acc[label(a) if callable(label) else label] += dt - child
        if _stack:
            _stack[-1] += dt
        return r
    setattr(obj, name, g)


def main(preset: str, archs: list[str], reps: int) -> None:
    cfg = crossbar.preset(preset)
    if preset == "paper":
        cfg = cfg.replace(out_noise_sigma=0.1, out_noise_convention="relative")
    limit_threads(1)
    wrap(CA, "program", "program")
    ML.crossbar.program = CA.program
    if hasattr(CA, "program_and_prepare"):
        wrap(CA, "program_and_prepare", "program")
        ML.crossbar.program_and_prepare = CA.program_and_prepare
    wrap(CA.ProgrammedArray, "_state", "read_state")
    wrap(MR.MatrixReader, "__call__", lambda a: "read_in" if a[1].shape[0] > 1 else "read_rec")
    wrap(MR.MatrixReader, "sequence_draws", "torch_normals")
    if hasattr(MR.MatrixReader, "read_one"):
        wrap(MR.MatrixReader, "read_one", "read_rec")
    if hasattr(crossbar, "StepNoise"):
        wrap(crossbar.StepNoise, "__call__", "noise_kernel")
    for name in ("lstm_cell_update", "lstm_hidden"):
        if hasattr(crossbar, name):
            wrap(crossbar, name, "cell_kernels")
    for arch in archs:
        torch.manual_seed(0)
        x = torch.randn(64, 28, 28)
        tn = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[arch]
        twin = getattr(torch.nn, tn)(28, 128, batch_first=True)
        analog = getattr(models, "Analog" + tn).from_torch(twin, cfg, seed=0)

        def stepper(m):
            opt = torch.optim.SGD(m.parameters(), lr=1e-3)

            def step():
                t0 = time.perf_counter()
                loss = m(x)[0][:, -1].square().mean()
                t1 = time.perf_counter()
                opt.zero_grad()
                loss.backward()
                t2 = time.perf_counter()
                opt.step()
                return t1 - t0, t2 - t1, time.perf_counter() - t2
            return step

        sa, st = stepper(analog), stepper(twin)
        for _ in range(3):
            sa()
            st()
        rows: dict[str, list[float]] = collections.defaultdict(list)
        for _ in range(reps):
            f, b, o = st()
            rows["torch"].append(f + b + o)
            rows["t_fwd"].append(f)
            rows["t_bwd"].append(b)
            acc.clear()
            f, b, o = sa()
            rows["step"].append(f + b + o)
            rows["backward"].append(b)
            rows["sgd"].append(o)
            rows["programming"].append(acc["program"] + acc["read_state"])
            for k in ("read_in", "read_rec", "torch_normals", "noise_kernel", "cell_kernels"):
                rows[k].append(acc[k])
            rows["forward"].append(f)
            rows["gates"].append(f - sum(acc[k] for k in ("program", "read_state", "read_in", "read_rec",
                                                          "torch_normals", "noise_kernel", "cell_kernels")))
        base = statistics.median(rows["torch"])
        med = {k: statistics.median(v) for k, v in rows.items()}
        print(f"{preset} {arch}: torch step {base * 1e3:.2f} ms (torch fwd {med['t_fwd'] * 1e3:.2f}, bwd "
              f"{med['t_bwd'] * 1e3:.2f}); medians of {reps}, ratio to torch step")
        for key, label in (("torch", "torch step"), ("t_fwd", "  torch forward"), ("t_bwd", "  torch backward"),
                           ("step", "analog step"), ("forward", "  forward"),
                           ("noise_kernel", "  StepNoise (normals + add)"), ("cell_kernels", "  LSTM cell kernels"),
                           ("programming", "  programming (+ read state)"), ("read_in", "  input-projection read"),
                           ("read_rec", "  recurrent reads"), ("torch_normals", "  torch normals (digital)"),
                           ("gates", "  gates + rest of forward"), ("backward", "  backward"), ("sgd", "  SGD step")):
            print(f"  {label:<30} {med[key] / base:6.2f}  ({med[key] * 1e3:7.2f} ms)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(",") if len(sys.argv) > 2 else ["lstm"],
         int(sys.argv[3]) if len(sys.argv) > 3 else 15)
