"""Analog recurrent layers and cells with torch's signatures, parameters and gate orders.

Every weight matrix (``weight_ih_l{k}[_reverse]``, ``weight_hh_l{k}[_reverse]``, or a
cell's ``weight_ih``/``weight_hh``) is read from a crossbar through
:class:`models.autograd.AnalogMVM`; biases are added digitally (exact). The input
projection of all time steps of a layer is one MVM call (its reads are independent, so
this is exact), the recurrent projection one call per step; an LSTM on a digital config
(ideal, paper) runs its whole recurrence as one autograd node
(:func:`models.fused.lstm_sequence`, same numbers). See
:mod:`models.noise` for the noise conventions and ``noise_draw``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .autograd import analog_mvm
from .cells import gru_step, lstm_step, rnn_relu_step, rnn_tanh_step
from .fused import gru_sequence, lstm_sequence, rnn_sequence
from .reader import SummedNoise
from .linear import AnalogLayerMixin, check_input

__all__ = ["AnalogRNN", "AnalogLSTM", "AnalogGRU", "AnalogRNNCell", "AnalogLSTMCell", "AnalogGRUCell"]

#: Run each layer direction (LSTM, GRU, Elman RNN; any config) as one autograd node
#: (:mod:`models.fused`); False forces the step-by-step reference path (``analog_mvm`` +
#: the cell step of :mod:`models.cells` per step). Both give the same numbers for the same
#: seed (the Elman RNN bit for bit, LSTM and GRU to rounding). Packed sequences always take
#: the step path.
FAST_RECURRENCE = True

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _check_sizes(input_size: Any, hidden_size: Any, num_layers: Any = 1, dropout: Any = 0.0) -> None:
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
        raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")


def _step_fn(mode: str):
    return {"RNN_TANH": rnn_tanh_step, "RNN_RELU": rnn_relu_step}.get(mode)


class _AnalogRNNBase(AnalogLayerMixin, nn.Module):
    """Shared machinery of AnalogRNN, AnalogLSTM and AnalogGRU (cf. torch.nn.RNNBase)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, config: Any, noise_draw: str = "mvm",
                 seed: int | None = None):
        super().__init__()
        _check_sizes(input_size, hidden_size, num_layers, dropout)
        if proj_size != 0:
            raise ValueError(f"proj_size (LSTM projections) is not supported by the analog layers, got {proj_size}")
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"analog layers run on the CPU (the crossbar kernel does), got device={device}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = 0
        gate = _GATES[mode] * hidden_size
        dirs = 2 if bidirectional else 1
        names = []
        for layer in range(num_layers):
            for d in range(dirs):
                sfx = "_reverse" if d == 1 else ""
                n_in = input_size if layer == 0 else hidden_size * dirs
                params = [(f"weight_ih_l{layer}{sfx}", (gate, n_in)), (f"weight_hh_l{layer}{sfx}", (gate, hidden_size))]
                if bias:
                    params += [(f"bias_ih_l{layer}{sfx}", (gate,)), (f"bias_hh_l{layer}{sfx}", (gate,))]
                for name, shape in params:
                    self.register_parameter(name, nn.Parameter(torch.empty(shape, dtype=dtype)))
                    names.append(name)
        self._flat_weights_names = names
        self.analog_weights = tuple(n for n in names if n.startswith("weight_"))
        self.reset_parameters()
        self._init_analog(config, noise_draw, seed)

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            nn.init.uniform_(w, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """No-op, for code written for torch's cuDNN layers."""

    @property
    def _dirs(self) -> int:
        return 2 if self.bidirectional else 1

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s + self._analog_extra_repr()

    # -- input handling ----------------------------------------------------------------
    def _check_hx(self, hx: Any, name: str, batch: int, batched: bool, ref: Tensor) -> Tensor:
        want = (self.num_layers * self._dirs, batch, self.hidden_size) if batched else \
            (self.num_layers * self._dirs, self.hidden_size)
        if not isinstance(hx, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape {want}, got {type(hx).__name__}")
        if tuple(hx.shape) != want:
            raise ValueError(f"{name} must have shape {want} (num_layers*num_directions, batch, hidden_size"
                             f"{'' if batched else ' without batch for unbatched input'}), got {tuple(hx.shape)}")
        check_input(hx, name, (hx.dim(),), None, ref)
        return hx if batched else hx.unsqueeze(1)

    def forward(self, input: Any, hx: Any = None):  # noqa: A002 (torch's name)
        """Run the sequence; same inputs and outputs as the torch twin.

        Args:
            input: (T, B, input_size), (B, T, input_size) with batch_first, (T, input_size)
                unbatched, or a :class:`~torch.nn.utils.rnn.PackedSequence`.
            hx: initial state (LSTM: a tuple (h0, c0)), each
                (num_layers * num_directions, B, hidden_size); zeros when None.

        Returns:
            (output, h_n) or, for the LSTM, (output, (h_n, c_n)); output has
            num_directions * hidden_size features (a PackedSequence for packed input).
        """
        w0 = self.weight_ih_l0
        packed = isinstance(input, PackedSequence)
        lengths = None
        if packed:
            x, lengths = pad_packed_sequence(input, batch_first=False)
            x = check_input(x, "input (unpacked)", (3,), self.input_size, w0)
            batched = True
        else:
            x = check_input(input, "input", (2, 3), self.input_size, w0)
            batched = x.dim() == 3
            if not batched:
                x = x.unsqueeze(1)
            elif self.batch_first:
                x = x.transpose(0, 1)
        steps, batch = x.shape[0], x.shape[1]
        if steps == 0 or batch == 0:
            raise ValueError(f"input must hold at least one time step and one sequence, got shape {tuple(x.shape)}")
        is_lstm = self.mode == "LSTM"
        n_state = self.num_layers * self._dirs
        if hx is None:
            h0 = x.new_zeros(n_state, batch, self.hidden_size)
            c0 = h0 if is_lstm else None
        elif is_lstm:
            if not (isinstance(hx, tuple) and len(hx) == 2):
                raise TypeError(f"hx of an LSTM must be a tuple (h0, c0), got {type(hx).__name__}")
            h0 = self._check_hx(hx[0], "h0", batch, batched, w0)
            c0 = self._check_hx(hx[1], "c0", batch, batched, w0)
        else:
            h0 = self._check_hx(hx, "hx", batch, batched, w0)
            c0 = None
        mask = None
        if lengths is not None:
            t_idx = torch.arange(steps).unsqueeze(1)
            mask = (t_idx < lengths.unsqueeze(0)).unsqueeze(-1)  # (T, B, 1)

        h_n, c_n = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(self._dirs):
                k = layer * self._dirs + d
                out, h, c = self._run_direction(layer_in, layer, d, h0[k], None if c0 is None else c0[k], mask)
                outs.append(out)
                h_n.append(h)
                if is_lstm:
                    c_n.append(c)
            layer_in = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, p=self.dropout, training=True)
        output = layer_in
        h_n_t = torch.stack(h_n, 0)
        c_n_t = torch.stack(c_n, 0) if is_lstm else None
        if packed:
            srt = input.sorted_indices
            out_s = output if srt is None else output.index_select(1, srt)
            len_s = lengths if srt is None else lengths.index_select(0, srt.cpu())
            p = pack_padded_sequence(out_s, len_s, enforce_sorted=True)
            output = PackedSequence(p.data, p.batch_sizes, input.sorted_indices, input.unsorted_indices)
        elif not batched:
            output = output.squeeze(1)
            h_n_t = h_n_t.squeeze(1)
            c_n_t = c_n_t.squeeze(1) if is_lstm else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return (output, (h_n_t, c_n_t)) if is_lstm else (output, h_n_t)

    def _run_direction(self, x: Tensor, layer: int, d: int, h: Tensor, c: Tensor | None,
                       mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        sfx = "_reverse" if d == 1 else ""
        steps, batch = x.shape[0], x.shape[1]
        w_ih = getattr(self, f"weight_ih_l{layer}{sfx}")
        w_hh = getattr(self, f"weight_hh_l{layer}{sfx}")
        b_ih = getattr(self, f"bias_ih_l{layer}{sfx}") if self.bias else None
        b_hh = getattr(self, f"bias_hh_l{layer}{sfx}") if self.bias else None
        # all input projections of the sequence: one MVM call
        read_ih = self._reader(f"weight_ih_l{layer}{sfx}", steps, batch)
        read_hh = self._reader(f"weight_hh_l{layer}{sfx}", steps, batch)
        # only gi + gh is used (not the GRU): one noise draw for both, exact in distribution
        # (a clipping reader of learned ranges merges the noise of the reader it wraps)
        summed = SummedNoise.of(getattr(read_ih, "wrapped", read_ih), getattr(read_hh, "wrapped", read_hh)) \
            if self.mode != "GRU" else None
        gi_all = analog_mvm(x, w_ih, read_ih)
        # learned input ranges clip every read inside autograd: the step path (analog_mvm per step)
        fused = FAST_RECURRENCE and mask is None and getattr(read_hh, "clip_input", None) is None
        if fused and self.mode == "LSTM":
            # the whole recurrence as one node (one weight-gradient matmul)
            return lstm_sequence(gi_all, w_hh, h, c, read_hh, reverse=d == 1,
                                 bias=None if b_ih is None else b_ih + b_hh, summed=summed)
        if b_ih is not None:
            gi_all = gi_all + b_ih
            if self.mode != "GRU":  # fold b_hh in once (GRU needs b_hn inside r * (.))
                gi_all = gi_all + b_hh
                b_hh = None
        if fused and self.mode == "GRU":
            out, h = gru_sequence(gi_all, w_hh, h, read_hh, reverse=d == 1, b_hh=b_hh)
            return out, h, None
        if fused:
            out, h = rnn_sequence(gi_all, w_hh, h, read_hh, reverse=d == 1, relu=self.mode == "RNN_RELU",
                                  summed=summed)
            return out, h, None
        gis = gi_all.unbind(0)  # one backward node for all steps (indexing would scatter T times)
        order = range(steps - 1, -1, -1) if d == 1 else range(steps)
        outs: list[Tensor | None] = [None] * steps
        mode = self.mode
        step = _step_fn(mode)
        for t in order:
            gh = analog_mvm(h.unsqueeze(0), w_hh, read_hh, t)[0]
            if b_hh is not None:
                gh = gh + b_hh
            if mode == "LSTM":
                h_new, c_new = lstm_step(gis[t], gh, c)
            elif mode == "GRU":
                h_new, c_new = gru_step(gis[t], gh, h), None
            else:
                h_new, c_new = step(gis[t], gh), None
            if mask is not None:
                m = mask[t]
                h = torch.where(m, h_new, h)
                if c_new is not None:
                    c = torch.where(m, c_new, c)
                outs[t] = torch.where(m, h_new, torch.zeros_like(h_new))
            else:
                h, c = h_new, c_new
                outs[t] = h_new
        return torch.stack(outs, 0), h, c

    # -- torch twins ---------------------------------------------------------------------
    #: the torch twin of this layer (set by each subclass)
    _torch_cls: type[nn.Module]
    #: constructor options beyond torch's common ones that the twin shares (e.g. nonlinearity)
    _extra_options: tuple[str, ...] = ()

    def _torch_kwargs(self) -> dict[str, Any]:
        kw = dict(num_layers=self.num_layers, bias=self.bias, batch_first=self.batch_first,
                  dropout=self.dropout, bidirectional=self.bidirectional)
        kw.update({name: getattr(self, name) for name in self._extra_options})
        return kw

    @classmethod
    def from_torch(cls, module: nn.Module, config: Any, **kw: Any) -> "_AnalogRNNBase":
        """An analog layer with ``module``'s options and weights (``module``: the torch twin)."""
        if not isinstance(module, cls._torch_cls):
            raise TypeError(f"{cls.__name__}.from_torch expects a {cls._torch_cls.__name__}, got {type(module).__name__}")
        options = dict(num_layers=module.num_layers, bias=module.bias, batch_first=module.batch_first,
                       dropout=module.dropout, bidirectional=module.bidirectional)
        options.update({name: getattr(module, name) for name in cls._extra_options})
        if getattr(module, "proj_size", 0):
            options["proj_size"] = module.proj_size  # rejected with a clear error by the constructor
        new = cls(module.input_size, module.hidden_size, dtype=module.weight_ih_l0.dtype, config=config,
                  **options, **kw)
        new.load_state_dict(module.state_dict())
        return new

    def to_torch(self) -> nn.Module:
        """The torch twin (:attr:`_torch_cls`) with this layer's options and weights."""
        new = self._torch_cls(self.input_size, self.hidden_size, dtype=self.weight_ih_l0.dtype, **self._torch_kwargs())
        new.load_state_dict(self.state_dict())
        return new


class AnalogRNN(_AnalogRNNBase):
    r"""Elman RNN on crossbars: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Same signature, parameters, shapes and outputs as :class:`torch.nn.RNN`, plus the
    analog keywords; the products ``W x`` are crossbar reads (:mod:`models.autograd`).

    Args:
        input_size: features of x.
        hidden_size: features of h.
        num_layers: stacked layers.
        nonlinearity: "tanh" or "relu".
        bias: use b_ih and b_hh (digital).
        batch_first: input and output as (B, T, F).
        dropout: dropout on the outputs of each layer but the last (training only).
        bidirectional: add a reverse direction.
        config: :class:`crossbar.ArrayConfig` (``crossbar.preset("ideal")`` = no noise).
        noise_draw: "mvm" | "step" | "sequence" | "batch" (see :mod:`models.noise`).
        seed: seed of the noise draws (None: from torch's global generator).

    Shape:
        input (T, B, input_size) -> output (T, B, D * hidden_size), h_n (num_layers * D, B, hidden_size).

    Example:
        >>> rnn = AnalogRNN(8, 16, config=crossbar.preset("paper", out_noise_sigma=0.1))
        >>> out, h = rnn(torch.randn(5, 3, 8))
    """

    _torch_cls = nn.RNN
    _extra_options = ("nonlinearity",)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, config: Any, noise_draw: str = "mvm", seed: int | None = None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, 0, device, dtype, config=config,
                         noise_draw=noise_draw, seed=seed)
        self.nonlinearity = nonlinearity


class AnalogLSTM(_AnalogRNNBase):
    r"""LSTM on crossbars, torch's gate order i, f, g, o and state (h, c).

    ``gates = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh``; ``c_t = f c_{t-1} + i g``;
    ``h_t = o tanh(c_t)``. Same signature (without ``proj_size``), parameters, shapes and
    outputs as :class:`torch.nn.LSTM`, plus the analog keywords (see :class:`AnalogRNN`).

    Shape:
        input (T, B, input_size) -> output (T, B, D * hidden_size), (h_n, c_n) each
        (num_layers * D, B, hidden_size).

    Example:
        >>> lstm = AnalogLSTM(28, 128, batch_first=True, config=crossbar.preset("paper", out_noise_sigma=0.1))
        >>> out, (h, c) = lstm(torch.randn(4, 28, 28))
    """

    _torch_cls = nn.LSTM

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None, *, config: Any, noise_draw: str = "mvm", seed: int | None = None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype, config=config, noise_draw=noise_draw, seed=seed)


class AnalogGRU(_AnalogRNNBase):
    r"""GRU on crossbars, torch's gate order r, z, n.

    ``r, z = sigmoid(W_i{r,z} x + b_i + W_h{r,z} h + b_h)``;
    ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``; ``h_t = (1 - z) n + z h_{t-1}``.
    Same signature, parameters, shapes and outputs as :class:`torch.nn.GRU`, plus the
    analog keywords (see :class:`AnalogRNN`).

    Example:
        >>> gru = AnalogGRU(8, 16, bidirectional=True, config=crossbar.preset("ideal"))
        >>> out, h = gru(torch.randn(5, 3, 8))
    """

    _torch_cls = nn.GRU

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, config: Any, noise_draw: str = "mvm", seed: int | None = None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, device, dtype, config=config, noise_draw=noise_draw, seed=seed)


# ----------------------------------------------------------------------------------------
# Cells
# ----------------------------------------------------------------------------------------


class _AnalogCellBase(AnalogLayerMixin, nn.Module):
    analog_weights = ("weight_ih", "weight_hh")
    #: the torch twin of this cell (set by each subclass)
    _torch_cls: type[nn.Module]
    #: constructor options beyond (input_size, hidden_size, bias) that the twin shares
    _extra_options: tuple[str, ...] = ()

    @classmethod
    def from_torch(cls, module: nn.Module, config: Any, **kw: Any) -> "_AnalogCellBase":
        """An analog cell with ``module``'s options and weights (``module``: the torch twin)."""
        if not isinstance(module, cls._torch_cls):
            raise TypeError(f"{cls.__name__}.from_torch expects a {cls._torch_cls.__name__}, got {type(module).__name__}")
        options = {name: getattr(module, name) for name in cls._extra_options}
        new = cls(module.input_size, module.hidden_size, module.bias, dtype=module.weight_ih.dtype, config=config,
                  **options, **kw)
        new.load_state_dict(module.state_dict())
        return new

    def to_torch(self) -> nn.Module:
        """The torch twin (:attr:`_torch_cls`) with this cell's options and weights."""
        options = {name: getattr(self, name) for name in self._extra_options}
        new = self._torch_cls(self.input_size, self.hidden_size, self.bias, dtype=self.weight_ih.dtype, **options)
        new.load_state_dict(self.state_dict())
        return new

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool, device, dtype, *,
                 config: Any, noise_draw: str, seed: int | None):
        super().__init__()
        _check_sizes(input_size, hidden_size)
        if noise_draw in ("sequence", "batch"):
            raise ValueError(
                f"noise_draw={noise_draw!r} shares draws across time steps, but a cell sees one step per call; "
                "use 'mvm' or 'step' (shared by the batch) with a cell, or the sequence layer")
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"analog layers run on the CPU (the crossbar kernel does), got device={device}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bool(bias)
        gate = _GATES[mode] * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gate, input_size, dtype=dtype))
        self.weight_hh = nn.Parameter(torch.empty(gate, hidden_size, dtype=dtype))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gate, dtype=dtype))
            self.bias_hh = nn.Parameter(torch.empty(gate, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()
        self._init_analog(config, noise_draw, seed)

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            nn.init.uniform_(w, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s + self._analog_extra_repr()

    def _prepare(self, input: Any, hx: Any):  # noqa: A002
        x = check_input(input, "input", (1, 2), self.input_size, self.weight_ih)
        batched = x.dim() == 2
        if not batched:
            x = x.unsqueeze(0)
        b = x.shape[0]
        states = []
        n_states = 2 if self.mode == "LSTM" else 1
        if hx is None:
            states = [x.new_zeros(b, self.hidden_size) for _ in range(n_states)]
        else:
            parts = hx if self.mode == "LSTM" else (hx,)
            if self.mode == "LSTM" and not (isinstance(hx, tuple) and len(hx) == 2):
                raise TypeError(f"hx of an LSTM cell must be a tuple (h, c), got {type(hx).__name__}")
            want = (b, self.hidden_size) if batched else (self.hidden_size,)
            for name, s in zip(("h", "c"), parts):
                if not isinstance(s, Tensor):
                    raise TypeError(f"{name} must be a torch.Tensor of shape {want}, got {type(s).__name__}")
                if tuple(s.shape) != want:
                    raise ValueError(f"{name} must have shape {want}, got {tuple(s.shape)}")
                check_input(s, name, (s.dim(),), None, self.weight_ih)
                states.append(s if batched else s.unsqueeze(0))
        x3 = x.unsqueeze(0)
        gi = analog_mvm(x3, self.weight_ih, self._reader("weight_ih", 1, b))[0]
        gh = analog_mvm(states[0].unsqueeze(0), self.weight_hh, self._reader("weight_hh", 1, b))[0]
        if self.bias:
            gi = gi + self.bias_ih
            gh = gh + self.bias_hh
        return gi, gh, states, batched


class AnalogRNNCell(_AnalogCellBase):
    """One Elman step on crossbars; as :class:`torch.nn.RNNCell` plus the analog keywords.

    ``noise_draw`` for cells: "mvm" (fresh per output) or "step" (shared by the batch).

    Shape:
        input (B, input_size) or (input_size,), hx like the output (B, hidden_size).

    Example:
        >>> cell = AnalogRNNCell(8, 16, config=crossbar.preset("ideal"))
        >>> h = cell(torch.randn(3, 8))
    """

    _torch_cls = nn.RNNCell
    _extra_options = ("nonlinearity",)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None, *, config: Any, noise_draw: str = "mvm", seed: int | None = None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, bias,
                         device, dtype, config=config, noise_draw=noise_draw, seed=seed)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        gi, gh, (h,), batched = self._prepare(input, hx)
        h = rnn_tanh_step(gi, gh) if self.nonlinearity == "tanh" else rnn_relu_step(gi, gh)
        return h if batched else h.squeeze(0)


class AnalogLSTMCell(_AnalogCellBase):
    """One LSTM step on crossbars; as :class:`torch.nn.LSTMCell` plus the analog keywords.

    Returns (h', c'). ``noise_draw``: "mvm" or "step" (see :class:`AnalogRNNCell`).

    Example:
        >>> cell = AnalogLSTMCell(8, 16, config=crossbar.preset("ideal"))
        >>> h, c = cell(torch.randn(3, 8))
    """

    _torch_cls = nn.LSTMCell

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 config: Any, noise_draw: str = "mvm", seed: int | None = None):
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype, config=config,
                         noise_draw=noise_draw, seed=seed)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:  # noqa: A002
        gi, gh, (_, c), batched = self._prepare(input, hx)
        h, c = lstm_step(gi, gh, c)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class AnalogGRUCell(_AnalogCellBase):
    """One GRU step on crossbars; as :class:`torch.nn.GRUCell` plus the analog keywords.

    ``noise_draw``: "mvm" or "step" (see :class:`AnalogRNNCell`).

    Example:
        >>> cell = AnalogGRUCell(8, 16, config=crossbar.preset("ideal"))
        >>> h = cell(torch.randn(3, 8))
    """

    _torch_cls = nn.GRUCell

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 config: Any, noise_draw: str = "mvm", seed: int | None = None):
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype, config=config,
                         noise_draw=noise_draw, seed=seed)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        gi, gh, (h,), batched = self._prepare(input, hx)
        h = gru_step(gi, gh, h)
        return h if batched else h.squeeze(0)
