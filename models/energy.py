"""Energy, latency and area per inference of a deployed model, from what its reads did.

:func:`measure` attaches a :class:`crossbar.energy.MVMCounter` to every programmed
array of a deployed model, runs the inference the caller gives (or :func:`measure_sequences`
runs a batch of sequences), and costs the counts with a chip's
:class:`crossbar.energy.CostModel`. The crossbar counts are exact (every read of every
array is counted as it happens); the RNN cell's digital work follows from the counted
reads of each recurrent matrix (one cell step per read of ``weight_hh``):

=====  =============================================  =====  =========  ==========
cell   adds per step and sequence (H hidden units)    mults  nonlinear  with bias
=====  =============================================  =====  =========  ==========
LSTM   4H gate sums + H (c = f c + i g)               3H     5H         + 4H adds
RNN    H gate sums                                    0      H          + H adds
GRU    2H (r, z sums) + H (n sum) + 2H (h update)     2H     3H         + 4H adds
=====  =============================================  =====  =========  ==========

Biases: ``b_ih + b_hh`` is one add per gate (folded once, as hardware would; the GRU's
``b_hn`` stays inside ``r (.)``, so it has two). A linear layer adds its bias (one add
per output). Latency per inference: recurrent layers step after step, each step the
slower of its two reads (the input projection runs on its own tiles, in parallel) plus
the cell's digital work; directions in parallel; layers and the head one after another.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from crossbar.energy import CATEGORIES, Chip, CostModel, DigitalOps, Estimate, MVMCounter, estimate, \
    estimate_digital_ops

from .convert import analog_layers
from .linear import AnalogLinear

__all__ = ["attach_counters", "detach_counters", "cell_ops", "EnergyReport", "measure", "measure_sequences",
           "format_report", "chip_for", "write_report", "AUTO_CHIP"]

_MODES = {"LSTM": "lstm", "RNN_TANH": "rnn", "RNN_RELU": "rnn", "GRU": "gru"}


def cell_ops(mode: str, hidden_size: int, bias: bool = True) -> DigitalOps:
    """Digital work of one cell step of one sequence (see the module table).

    Args:
        mode: "lstm", "rnn" or "gru" (or torch's mode names LSTM, RNN_TANH, RNN_RELU, GRU).
        hidden_size: H.
        bias: whether the cell has biases.

    Example:
        >>> cell_ops("lstm", 128)
        DigitalOps(adds=1152, mults=384, nonlinear=640, steps=1)
    """
    m = _MODES.get(mode, mode)
    h = int(hidden_size)
    if m == "lstm":
        ops = DigitalOps(adds=5 * h + (4 * h if bias else 0), mults=3 * h, nonlinear=5 * h, steps=1)
    elif m == "rnn":
        ops = DigitalOps(adds=h + (h if bias else 0), mults=0, nonlinear=h, steps=1)
    elif m == "gru":
        ops = DigitalOps(adds=5 * h + (4 * h if bias else 0), mults=2 * h, nonlinear=3 * h, steps=1)
    else:
        raise ValueError(f"mode must be one of lstm, rnn, gru, got {mode!r}")
    return ops


def _chip_costs(chip: Chip | CostModel) -> tuple[str, CostModel, Chip | None]:
    if isinstance(chip, Chip):
        return chip.name, chip.costs, chip
    if isinstance(chip, CostModel):
        return chip.name, chip, None
    raise TypeError(f"chip must be a crossbar.energy.Chip or CostModel, got {type(chip).__name__}")


def attach_counters(model: nn.Module, **extra: Any) -> dict[str, MVMCounter]:
    """Attach a fresh counter to every programmed array of a deployed model.

    Args:
        model: a model whose analog layers are programmed (``models.program``).
        **extra: passed to :meth:`MVMCounter.for_array` (e.g. ``phases``).

    Returns:
        ``"<layer>.<weight>"`` -> its counter, in module order.

    Raises:
        ValueError: no analog layer, or a layer not programmed.
    """
    out: dict[str, MVMCounter] = {}
    layers = list(analog_layers(model))
    if not layers:
        raise ValueError("model has no analog layers; convert it first (models.convert(model, config))")
    for name, layer in layers:
        arrays = layer.programmed_arrays()
        if not arrays:
            raise ValueError(f"analog layer {name or '<model>'} is not programmed; call models.program(model) first")
        for wname, arr in arrays.items():
            arr.counters = MVMCounter.for_array(arr, **extra)
            out[f"{name}.{wname}" if name else wname] = arr.counters
    return out


def detach_counters(model: nn.Module) -> None:
    """Remove the counters of every programmed array (reads stop being counted)."""
    for _, layer in analog_layers(model):
        for arr in layer.programmed_arrays().values():
            arr.counters = None


@dataclass
class EnergyReport:
    """Energy, latency, area and TOPS/W per inference, per layer and in total.

    Attributes:
        chip: name of the chip preset or cost model.
        inferences: inferences (sequences) the counts were taken over.
        layers: per analog layer: name, kind, matrices, tiles, :class:`Estimate` per inference.
        total: the whole model per inference (latency: the critical path, see the module).
        counters: ``"<layer>.<weight>"`` -> the counts (totals over all inferences).
        notes: assumptions that applied (e.g. ideal converters costed at nominal bits).
    """

    chip: str
    inferences: int
    layers: list = field(default_factory=list)
    total: Estimate = field(default_factory=Estimate)
    counters: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    n_tiles_chip: int | None = None

    @property
    def tiles(self) -> int:
        """Physical arrays the model occupies."""
        return sum(r["tiles"] for r in self.layers)

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per layer plus a "total" row (CSV-ready; energies in J, latency in s)."""
        out = []
        for r in self.layers + [{"layer": "total", "kind": "", "tiles": self.tiles, "estimate": self.total}]:
            est: Estimate = r["estimate"]
            row = {"chip": self.chip, "layer": r["layer"], "kind": r["kind"], "tiles": r["tiles"],
                   "energy_j": est.energy_j, "component_j": est.component_j, "latency_s": est.latency_s,
                   "area_mm2": est.area_um2 * 1e-6, "ops": est.ops, "tops_per_w": est.tops_per_w,
                   "component_tops_per_w": est.component_tops_per_w}
            row.update({f"{k}_j": est.energy[k] for k in CATEGORIES})
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: rows, counts, notes."""
        return {"chip": self.chip, "inferences": self.inferences, "rows": self.rows(),
                "counts": {k: {**c.describe(), **c.totals()} for k, c in self.counters.items()},
                "notes": list(self.notes), "tiles": self.tiles, "n_tiles_chip": self.n_tiles_chip}

    def write_csv(self, path: str | Path) -> None:
        """Write :meth:`rows` to ``path`` (atomically)."""
        from xbarsim.files import atomic_path

        rows = self.rows()
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)

    def plot(self, path: str | Path, title: str | None = None) -> None:
        """Energy per inference by category, one bar per layer and the total: left with the
        chip's fitted overhead, right the physics alone (components)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from xbarsim.files import atomic_path

        rows = self.rows()
        names = [r["layer"] for r in rows]
        fig, axes = plt.subplots(1, 2, figsize=(2.0 + 2.4 * len(names), 4.2))
        for ax, cats, sub in ((axes[0], CATEGORIES, "with the fitted overhead"),
                              (axes[1], tuple(k for k in CATEGORIES if k != "overhead"), "physics only")):
            bottom = np.zeros(len(rows))
            for i, k in enumerate(CATEGORIES):
                if k not in cats:
                    continue
                vals = np.array([r[f"{k}_j"] for r in rows]) * 1e9
                if vals.any():
                    ax.bar(names, vals, bottom=bottom, label=k, color=f"C{i}",
                           hatch="//" if k == "overhead" else None)
                    bottom += vals
            ax.set_ylabel("energy per inference (nJ)")
            ax.set_title(sub, fontsize=9)
            ax.legend(fontsize=7)
        fig.suptitle(title or f"energy per inference on {self.chip}", fontsize=10)
        fig.tight_layout()
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)


def _layer_estimate(name: str, layer: Any, counters: dict[str, MVMCounter], costs: CostModel,
                    n: int) -> dict[str, Any]:
    """One analog layer's estimate per inference (energy scaled by 1/n, latency per inference)."""
    own = counters
    per_matrix = {w: estimate(c, costs) for w, c in own.items()}
    energy = Estimate()
    for e in per_matrix.values():
        energy = energy + e
    notes = list(energy.notes)
    tiles = sum(c.n_tiles for c in own.values())
    area = energy.area_um2
    if isinstance(layer, AnalogLinear):
        c = own["weight"]
        vec_per_inf = c.vectors / n
        if layer.bias is not None:
            dig = estimate_digital_ops(DigitalOps(adds=layer.out_features, steps=1).scaled(c.vectors), costs)
            energy = energy + Estimate(dig.energy, 0.0, 0.0, 0.0)
        latency = vec_per_inf * per_matrix["weight"].latency_s
        kind = "linear"
    else:
        mode = getattr(layer, "mode", None)
        if mode not in _MODES:
            raise ValueError(f"layer {name}: energy accounting supports Linear, RNN, LSTM and GRU layers, got "
                             f"{type(layer).__name__}")
        kind = _MODES[mode]
        step = cell_ops(mode, layer.hidden_size, layer.bias)
        latency = 0.0
        n_layers = getattr(layer, "num_layers", 1)
        dirs = 2 if getattr(layer, "bidirectional", False) else 1
        for lyr in range(n_layers):
            lat_dir = 0.0
            for d in range(dirs):
                sfx = "_reverse" if d else ""
                ih, hh = (f"weight_ih_l{lyr}{sfx}", f"weight_hh_l{lyr}{sfx}") if "weight_hh" not in own \
                    else ("weight_ih", "weight_hh")
                dig = estimate_digital_ops(step.scaled(own[hh].vectors), costs)
                energy = energy + Estimate(dig.energy, 0.0, 0.0, 0.0)
                steps_per_inf = own[hh].vectors / n
                t_step = max(per_matrix[ih].latency_s, per_matrix[hh].latency_s)
                t_dig = estimate_digital_ops(step, costs).latency_s
                lat_dir = max(lat_dir, steps_per_inf * (t_step + t_dig))
            latency += lat_dir
    est = energy.scaled(1.0 / n)
    est.latency_s = latency
    est.area_um2 = area
    est.notes = notes
    return {"layer": name or "<model>", "kind": kind, "matrices": list(own), "tiles": tiles, "estimate": est}


def measure(model: nn.Module, run: Callable[[nn.Module], int], chip: Chip | CostModel, **extra: Any) -> EnergyReport:
    """Count the reads of ``run(model)`` and cost them per inference on ``chip``.

    Args:
        model: a deployed model (``models.program`` done).
        run: runs the inference(s) on ``model`` and returns how many inferences it made.
        chip: a :class:`crossbar.energy.Chip` preset (``crossbar.energy.CHIPS[...]``) or a
            :class:`crossbar.energy.CostModel`.
        **extra: passed to the counters (e.g. ``phases=4``).

    Returns:
        The :class:`EnergyReport` (counts stay readable in ``report.counters``; the
        counters are detached from the model afterwards).
    """
    chip_name, costs, chip_obj = _chip_costs(chip)
    counters = attach_counters(model, **extra)
    try:
        n = int(run(model))
    finally:
        detach_counters(model)
    if n < 1:
        raise ValueError(f"run(model) must return the number of inferences made (>= 1), got {n}")
    report = EnergyReport(chip=chip_name, inferences=n, counters=counters,
                          n_tiles_chip=None if chip_obj is None else chip_obj.n_tiles)
    total = Estimate()
    latency = 0.0
    for name, layer in analog_layers(model):
        prefix = f"{name}." if name else ""
        own = {k[len(prefix):]: c for k, c in counters.items() if k.startswith(prefix) and "." not in k[len(prefix):]}
        row = _layer_estimate(name, layer, own, costs, n)
        report.layers.append(row)
        total = total + row["estimate"]
        latency += row["estimate"].latency_s
    total.latency_s = latency
    report.total = total
    notes = list(dict.fromkeys(total.notes))
    if costs.kind == "digital":
        for row in report.layers:
            row["tiles"] = 0  # no arrays: the digital baseline computes the MACs in logic
    elif chip_obj is not None and report.tiles > chip_obj.n_tiles:
        notes.append(f"the model needs {report.tiles} arrays, the chip has {chip_obj.n_tiles}: weights would not "
                     "stay stationary")
    report.notes = notes
    return report


def measure_sequences(model: nn.Module, x: Any, chip: Chip | CostModel, *, lengths: Any = None,
                      batch_size: int = 256, **extra: Any) -> EnergyReport:
    """:func:`measure` over sequences ``x`` (N, T, F): one inference per sequence.

    ``model(xb)`` (or ``model(xb, lengths_b)``) is called under ``torch.no_grad`` in eval
    mode, in batches of ``batch_size``. The counts do not depend on the input values.
    """
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    lt = None if lengths is None else torch.as_tensor(np.asarray(lengths))
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"x must hold at least one sequence (N, T, F), got shape {tuple(x.shape)}")

    def run(m: nn.Module) -> int:
        was = m.training
        m.eval()
        with torch.no_grad():
            for i in range(0, x.shape[0], batch_size):
                if lt is None:
                    m(x[i:i + batch_size])
                else:
                    m(x[i:i + batch_size], lt[i:i + batch_size])
        m.train(was)
        return int(x.shape[0])

    return measure(model, run, chip, **extra)


def format_report(report: EnergyReport) -> str:
    """A human table of a report (nJ, us, mm^2, TOPS/W)."""
    lines = [f"{'layer':<10} {'tiles':>5} {'energy nJ':>10} {'physics nJ':>10} {'latency us':>10} "
             f"{'area mm2':>9} {'TOPS/W':>8} {'phys TOPS/W':>11}  dominant"]
    for r in report.rows():
        parts = {k: r[f"{k}_j"] for k in CATEGORIES if k != "overhead"}
        dom = max(parts, key=parts.get) if any(parts.values()) else "-"
        lines.append(f"{r['layer']:<10} {r['tiles']:>5} {r['energy_j'] * 1e9:>10.2f} {r['component_j'] * 1e9:>10.2f} "
                     f"{r['latency_s'] * 1e6:>10.3f} {r['area_mm2']:>9.3f} {r['tops_per_w']:>8.2f} "
                     f"{r['component_tops_per_w']:>11.2f}  {dom}")
    return "\n".join(lines)



#: device preset -> the chip preset whose costs ``--energy auto`` uses
AUTO_CHIP = {"pcm": "hermes", "rram": "neurram", "ideal": "digital", "paper": "digital"}


def chip_for(name: str, device_preset: str) -> Chip:
    """The chip preset ``name`` (``crossbar.energy.CHIPS``), or for "auto" the one matching
    the device preset (pcm -> hermes, rram -> neurram, ideal/paper -> digital, else hermes).

    Raises:
        ValueError: unknown chip name (the valid ones listed).
    """
    from crossbar.energy import chip

    if name == "auto":
        name = AUTO_CHIP.get(device_preset, "hermes")
    return chip(name)


def write_report(report: EnergyReport, out: str | Path, *, title: str | None = None,
                 attrs: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``energy.csv`` (rows per layer and total), ``energy.json`` (rows, counts,
    notes, ``attrs``) and ``energy.png`` (breakdown) into ``out``; return their paths."""
    from xbarsim.files import atomic_write_json

    out = Path(out)
    paths = {"csv": out / "energy.csv", "json": out / "energy.json", "png": out / "energy.png"}
    report.write_csv(paths["csv"])
    atomic_write_json(paths["json"], {**(attrs or {}), **report.to_dict()})
    report.plot(paths["png"], title=title)
    return paths
