"""``xbarsim bench rnn``: analog LSTM, GRU and RNN training step and inference vs their torch twins (and aihwkit).

For each architecture in ``--arch`` (lstm, gru, rnn; all three by default), one training
step = forward + backward + SGD update of a one-layer recurrent layer (input 28, hidden
128, sequence 28, batch 64 by default) with a loss on the last output, timed for the
analog layer (models.AnalogLSTM / AnalogGRU / AnalogRNN, made with ``from_torch`` from
its twin), its torch twin (torch.nn.LSTM / GRU / RNN with tanh, no noise) and aihwkit's
analog layer of the same kind when importable. Each ratio is to the torch twin of the
same architecture. The analog layers run with the noise of ``--preset`` on: by default
Deep Noise Injection with the "paper" preset, relative output noise sigma 0.1, fresh on
every MVM; ``--preset pcm`` / ``rram`` / a device-model JSON file trains on that device's
noise (programmed afresh on every training forward, read noise fresh per read) with the
preset's own periphery (8-bit DAC and ADC), plus the paper's output noise only when
``--sigma`` is given. Measurements of all
contestants of all architectures are interleaved (round robin) so that load from other
processes hits them alike; the median is reported. Inference throughput is sequences per
second of a no-grad forward. One thread per pool (DESIGN.md).

Example:
    xbarsim bench rnn --arch lstm,gru --json rnn.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Any, Callable

from study.cli import arch_list as _parse_archs
from xbarsim.cliargs import int_at_least
from xbarsim.files import atomic_write_text
from xbarsim.threads import limit_threads

__all__ = ["main", "ARCHS"]

#: the architectures, in table order: the analog layer (models), its torch twin, aihwkit's cell class
ARCHS: dict[str, tuple[str, str, str]] = {
    "lstm": ("AnalogLSTM", "LSTM", "AnalogLSTMCell"),
    "gru": ("AnalogGRU", "GRU", "AnalogGRUCell"),
    "rnn": ("AnalogRNN", "RNN", "AnalogVanillaRNNCell"),
}


def _arch_list(text: str) -> list[str]:
    """``--arch``: a comma list of ARCHS, duplicates dropped, order kept (study.cli's check and message)."""
    return list(dict.fromkeys(_parse_archs(text)))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xbarsim bench rnn", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    p.add_argument("--arch", type=_arch_list, default=list(ARCHS),
                   help=f"comma list of architectures out of {', '.join(ARCHS)} (default all)")
    p.add_argument("--input", type=int_at_least(1), default=28, help="input features (default 28)")
    p.add_argument("--hidden", type=int_at_least(1), default=128, help="hidden units (default 128)")
    p.add_argument("--seq", type=int_at_least(1), default=28, help="sequence length (default 28)")
    p.add_argument("--batch", type=int_at_least(1), default=64, help="batch size (default 64)")
    p.add_argument("--preset", default="paper",
                   help="crossbar preset of the analog layers: paper, pcm, rram, sonos, ideal or a device-model JSON "
                        "file (default paper)")
    p.add_argument("--sigma", type=float, default=None,
                   help="relative output noise added by the analog layers (default: 0.1 with the paper preset, "
                        "none with the others)")
    p.add_argument("--repeats", type=int_at_least(1), default=30,
                   help="timed repetitions per contestant (default 30)")
    p.add_argument("--warmup", type=int_at_least(0), default=3, help="untimed repetitions first (default 3)")
    p.add_argument("--threads", type=int_at_least(1), default=1, help="threads for torch and BLAS (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, inputs and noise (default 0)")
    p.add_argument("--no-aihwkit", action="store_true", help="skip aihwkit even when importable")
    return p


def _aihwkit_rnn(args, arch: str) -> tuple[Any, str, Any] | tuple[None, str, None]:
    """aihwkit's analog layer of ``arch`` (C++ inference tiles, hardware-aware training) and its optimizer.

    ``aihwkit.nn.AnalogRNN`` around the cell of ``arch``: ``AnalogLSTMCell``, ``AnalogGRUCell``
    or ``AnalogVanillaRNNCell`` (tanh, as the torch twin); time-first input and output.
    Mirrors the "paper" preset as far as aihwkit allows: ideal DAC/ADC (no quantization),
    fixed input range 1 and output bound 12 with clipping and no noise / bound management
    (no input rescaling, no re-runs on saturation), no tiling, fresh additive Gaussian output
    noise on every forward MVM, per-output weight scaling. Difference: aihwkit's ``out_noise``
    is an absolute sigma in normalized output units (weights scaled to max |w| = 1 per output),
    while the preset's is relative to the RMS of the clean output; the cost (one normal per
    output and MVM) is the same, the resulting noise level is of the same order. Backward is ideal in aihwkit's
    inference config (as in our DNI). The analog weights live in the C++ tile; the step uses
    aihwkit's ``AnalogSGD``, its documented optimizer for analog layers.
    Returns (model, description, optimizer class) or (None, reason, None).
    """
    try:
        from aihwkit.nn import AnalogGRUCell, AnalogLSTMCell, AnalogRNN, AnalogVanillaRNNCell  # type: ignore
        from aihwkit.optim import AnalogSGD  # type: ignore
        from aihwkit.simulator.configs import InferenceRPUConfig  # type: ignore
        from aihwkit.simulator.parameters.enums import BoundManagementType, NoiseManagementType  # type: ignore
    except Exception as exc:  # noqa: BLE001 - any import failure means: not available
        return None, f"aihwkit not importable ({type(exc).__name__}: {exc})", None
    cell = {"lstm": AnalogLSTMCell, "gru": AnalogGRUCell, "rnn": AnalogVanillaRNNCell}[arch]
    cfg = InferenceRPUConfig()
    fwd = cfg.forward
    fwd.out_noise = args.sigma
    fwd.inp_res = -1
    fwd.out_res = -1
    fwd.inp_bound = 1.0
    fwd.out_bound = 12.0
    fwd.noise_management = NoiseManagementType.NONE
    fwd.bound_management = BoundManagementType.NONE
    cfg.mapping.weight_scaling_omega = 1.0  # per-output weight scaling, as the preset's column mapping
    cfg.mapping.weight_scaling_columnwise = True
    cfg.mapping.max_input_size = 0
    cfg.mapping.max_output_size = 0
    cfg.drift_compensation = None
    model = AnalogRNN(cell, args.input, args.hidden, rpu_config=cfg)
    return (model, f"aihwkit AnalogRNN({ARCHS[arch][2]}), InferenceRPUConfig, out_noise {args.sigma} (absolute), "
            "omega 1 per output, ideal DAC/ADC, AnalogSGD", AnalogSGD)


def _train_step(model, x, out_of: Callable, opt_cls: Any) -> Callable[[], None]:
    """One forward + backward + optimizer step of ``model`` on ``x``, loss = mean square of ``out_of(output)``."""
    opt = opt_cls(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = out_of(model(x)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def _infer(model, x) -> Callable[[], None]:
    """A no-grad forward of ``model`` on ``x``."""
    import torch

    def run() -> None:
        with torch.no_grad():
            model(x)
    return run


def _last_batch_first(out):
    return out[0][:, -1]


def _last_time_first(out):
    return out[0][-1]


def _contestant(arch: str, model, x, out_of: Callable, what: str, opt_cls: Any = None) -> dict:
    import torch

    return {"arch": arch, "train": _train_step(model, x, out_of, opt_cls or torch.optim.SGD),
            "infer": _infer(model, x), "what": what}


def _setup(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The analog config (a bad --preset or --sigma is a usage error; ``args.sigma`` is resolved:
    0.1 with the paper preset when not given), the thread limits and the seeded inputs.

    Returns:
        (config, x batch-first (B, T, F), x time-first (T, B, F) for aihwkit).
    """
    import torch

    import crossbar
    import models  # noqa: F401 - loaded before the thread limits, as the contestants use it

    if args.sigma is None and args.preset == "paper":
        args.sigma = 0.1
    try:
        config = crossbar.preset(args.preset)
    except ValueError as exc:
        parser.error(f"argument --preset: {exc}")
    if args.sigma is not None:
        try:
            config = config.replace(out_noise_sigma=args.sigma, out_noise_convention="relative")
        except ValueError as exc:
            parser.error(f"argument --sigma: {exc}")
    # after the imports: threadpoolctl only limits the pools already loaded
    limit_threads(args.threads)
    torch.manual_seed(args.seed)
    x_bf = torch.randn(args.batch, args.seq, args.input)     # batch_first
    return config, x_bf, x_bf.transpose(0, 1).contiguous()


def make_contestants(args: argparse.Namespace, config, x_bf, x_tf) -> tuple[dict[str, dict], dict[str, dict]]:
    """Per architecture: the torch twin, the analog layer made from it, and aihwkit's layer (or why not).

    Returns:
        (contestants by name ``<who>_<arch>``, skipped ones by name: ``{"arch", "skipped": why}``).
    """
    import torch

    import models

    contestants: dict[str, dict[str, Any]] = {}
    skipped: dict[str, dict[str, str]] = {}
    noise_what = (f"{config.name} preset" + (f", relative sigma {args.sigma}" if args.sigma is not None else "")
                  + ", noise_draw=mvm")
    for arch in args.arch:
        analog_name, torch_name, _ = ARCHS[arch]
        torch.manual_seed(args.seed)  # the same weights for an arch whichever others run
        twin = getattr(torch.nn, torch_name)(args.input, args.hidden, batch_first=True)
        analog = getattr(models, analog_name).from_torch(twin, config, seed=args.seed)
        tanh = " tanh" if arch == "rnn" else ""
        contestants[f"torch_{arch}"] = _contestant(arch, twin, x_bf, _last_batch_first,
                                                   f"torch.nn.{torch_name}{tanh} (no noise)")
        contestants[f"analog_{arch}"] = _contestant(arch, analog, x_bf, _last_batch_first,
                                                    f"models.{analog_name}, {noise_what}")
        if args.no_aihwkit:
            model, what, opt_cls = None, "--no-aihwkit", None
        elif args.preset != "paper":
            model, what, opt_cls = None, f"aihwkit's layer mirrors the paper preset only, not {args.preset!r}", None
        else:
            model, what, opt_cls = _aihwkit_rnn(args, arch)
        if model is None:
            skipped[f"aihwkit_{arch}"] = {"arch": arch, "skipped": what}
        else:
            limit_threads(args.threads)  # again: aihwkit may have loaded its own BLAS / OpenMP
            contestants[f"aihwkit_{arch}"] = _contestant(arch, model, x_tf, _last_time_first, what, opt_cls)
    return contestants, skipped


def time_round_robin(contestants: dict[str, dict], warmup: int, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Seconds of each contestant's ``train`` and ``infer`` call, interleaved (round robin), warm-up dropped."""
    times: dict[str, dict[str, list[float]]] = {k: {"train": [], "infer": []} for k in contestants}
    for kind in ("train", "infer"):
        for rep in range(warmup + repeats):
            for name, c in contestants.items():
                t0 = time.perf_counter()
                c[kind]()
                dt = time.perf_counter() - t0
                if rep >= warmup:
                    times[name][kind].append(dt)
    return times


def _record(name: str, arch: str, what: str, t: dict[str, list[float]], base_s: float, batch: int) -> dict:
    """One timed record: medians, the ratio to the torch twin's median ``base_s``, the IQR, throughput."""
    import numpy as np

    med = statistics.median(t["train"])
    inf = statistics.median(t["infer"])
    return {"name": name, "arch": arch, "what": what, "seconds_median": med, "time_ratio_to_torch": med / base_s,
            "seconds_iqr": float(np.subtract(*np.percentile(t["train"], [75, 25]))),
            "inference_seconds_median": inf, "inference_sequences_per_s": batch / inf}


def make_records(args: argparse.Namespace, contestants: dict, skipped: dict, times: dict) -> list[dict]:
    """Records in table order: per architecture torch twin, analog, aihwkit (timed or skipped)."""
    records = []
    for arch in args.arch:
        base = statistics.median(times[f"torch_{arch}"]["train"])
        for name in (f"torch_{arch}", f"analog_{arch}", f"aihwkit_{arch}"):
            if name in skipped:
                records.append({"name": name, **skipped[name]})
            else:
                records.append(_record(name, arch, contestants[name]["what"], times[name], base, args.batch))
    return records


def print_table(args: argparse.Namespace, records: list[dict]) -> None:
    """The human table: a header with the settings, one row per record."""
    print(f"RNN training step (forward+backward+SGD), {', '.join(args.arch)} {args.input}->{args.hidden}, "
          f"T={args.seq}, B={args.batch}, preset {args.preset}, {args.threads} thread(s), median of {args.repeats}; "
          "ratio: to the torch twin of the same arch")
    print(f"{'arch':<5} {'name':<14} {'step ms':>9} {'ratio':>7} {'infer seq/s':>12}  what")
    for r in records:
        if "skipped" in r:
            print(f"{r['arch']:<5} {r['name']:<14} {'skipped':>9} {'':>7} {'':>12}  {r['skipped']}")
        else:
            print(f"{r['arch']:<5} {r['name']:<14} {r['seconds_median'] * 1e3:>9.2f} {r['time_ratio_to_torch']:>7.2f} "
                  f"{r['inference_sequences_per_s']:>12.0f}  {r['what']}")


def write_json(args: argparse.Namespace, records: list[dict], config: Any) -> None:
    """``{"meta": settings and versions, "records": [...]}`` to ``args.json``, atomically."""
    import numpy as np
    import torch

    meta = {"benchmark": "rnn", "archs": args.arch, "input": args.input, "hidden": args.hidden, "seq": args.seq,
            "batch": args.batch, "sigma": args.sigma, "noise_convention": "relative", "preset": args.preset,
            "config": config.to_dict(),
            "threads": args.threads, "repeats": args.repeats, "seed": args.seed,
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "machine": platform.machine()}
    atomic_write_text(args.json, json.dumps({"meta": meta, "records": records}, indent=2))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table; optionally write JSON. Returns 0 (2 for bad arguments)."""
    parser = _parser()
    args = parser.parse_args(argv)
    config, x_bf, x_tf = _setup(args, parser)
    contestants, skipped = make_contestants(args, config, x_bf, x_tf)
    times = time_round_robin(contestants, args.warmup, args.repeats)
    records = make_records(args, contestants, skipped, times)
    print_table(args, records)
    if args.json:
        write_json(args, records, config)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
