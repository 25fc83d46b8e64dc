"""Names shared by the CLI, the sweep and the experiment code, importable without torch.

``xbarsim sweep --help`` builds a :class:`study.sweep.SweepSpec` for its defaults, which checks
its architectures and convention against these: keeping them here keeps ``--help`` free of
torch (study.experiment imports it).
"""
from __future__ import annotations

__all__ = ["ARCHS", "CONVENTIONS"]

#: the recurrent architectures of the main job (torch's nn.RNN, nn.LSTM, nn.GRU)
ARCHS = ("rnn", "lstm", "gru")
#: the output-noise conventions: relative (x RMS of the noiseless MVM output), absolute, snr_db
CONVENTIONS = ("relative", "absolute", "snr_db")
