"""The study's sizes (profiles), its stages in order, and names the stages and the report share."""
from __future__ import annotations

import math
from typing import Any

STAGES = ("speech", "mnist", "clean", "deploy", "device", "device_deploy", "conventions", "report")

#: the study (``full``) and a seconds-long smoke run (``tiny``). Strings are passed to the CLI as given.
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "mnist": {"data": "mnist", "n_train": None, "n_test": 5000, "archs": "lstm,rnn", "hidden": 128,
                  "epochs": 10, "batch_size": 64, "lr": 1e-3, "optimizer": "adam",
                  "sigma_train": "0,0.05,0.1,0.2,0.4", "sigma_val": "0,0.05,0.1,0.2,0.3,0.4,0.6,0.8",
                  "seeds": "0,1,2,3,4", "draws": 20, "convention": "relative"},
        "clean": {"n_test": None},
        "deploy": {"presets": "pcm,rram", "times": "1,3600,86400,2592000,31536000", "instances": 4, "draws": 2,
                   "n_test": 2000, "seeds": "0,1,2", "seed": 0},
        "device": {"preset": "pcm", "sigma_train": "0,0.2", "sigma_val": "0", "seeds": "0,1,2", "draws": 10},
        "speech": {"data": "japanese_vowels", "n_train": None, "n_test": None, "archs": "lstm,rnn", "hidden": 128,
                   "epochs": 60, "batch_size": 16, "lr": 2e-3, "optimizer": "adam",
                   "sigma_train": "0,0.05,0.1,0.2,0.4", "sigma_val": "0,0.05,0.1,0.2,0.3,0.4,0.6,0.8",
                   "seeds": "0,1,2,3,4", "draws": 20, "convention": "relative"},
        "conventions": {"data": "mnist", "n_train": 10000, "n_test": 2000, "archs": "lstm", "hidden": 128,
                        "epochs": 10, "batch_size": 64, "lr": 1e-3, "optimizer": "adam", "seeds": "0,1,2",
                        "draws": 10,
                        "levels": {"relative": ("0,0.1,0.2,0.4", "0,0.1,0.2,0.4,0.8"),
                                   "absolute": ("0,0.1,0.2,0.4", "0,0.1,0.2,0.4,0.8"),
                                   "snr_db": ("inf,20,14,8", "inf,20,14,8,2")}},
    },
    "tiny": {
        "mnist": {"data": "digits", "n_train": 300, "n_test": 100, "archs": "lstm,rnn", "hidden": 8, "epochs": 1,
                  "batch_size": 64, "lr": 1e-2, "optimizer": "adam", "sigma_train": "0,0.2", "sigma_val": "0,0.2",
                  "seeds": "0", "draws": 2, "convention": "relative"},
        "clean": {"n_test": None},
        "deploy": {"presets": "pcm", "times": "1,31536000", "instances": 2, "draws": 1, "n_test": 50,
                   "seeds": "0", "seed": 0},
        "device": {"preset": "pcm", "sigma_train": "0,0.2", "sigma_val": "0", "seeds": "0", "draws": 2},
        "speech": {"data": "digits", "n_train": 200, "n_test": 50, "archs": "lstm", "hidden": 4, "epochs": 1,
                   "batch_size": 64, "lr": 1e-2, "optimizer": "adam", "sigma_train": "0,0.2", "sigma_val": "0,0.2",
                   "seeds": "0", "draws": 2, "convention": "relative"},
        "conventions": {"data": "digits", "n_train": 200, "n_test": 50, "archs": "lstm", "hidden": 4, "epochs": 1,
                        "batch_size": 64, "lr": 1e-2, "optimizer": "adam", "seeds": "0", "draws": 2,
                        "levels": {"relative": ("0,0.2", "0,0.2"), "absolute": ("0,0.2", "0,0.2"),
                                   "snr_db": ("inf,14", "inf,14")}},
    },
}

#: deployed model kinds trained on the device preset: its noise alone, and with the paper's output noise on top
_DEVICE_KINDS = ("dni_device", "dni_device_paper")
_KIND_COLORS = {"conventional": "C0", "dni_paper": "C1", "dni_device": "C2", "dni_device_paper": "C3"}
_TIME_NAMES = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 day", 2592000.0: "30 days", 31536000.0: "1 year"}


def _noiseless(level: float, convention: str) -> bool:
    return (convention == "snr_db" and math.isinf(level) and level > 0) or (convention != "snr_db" and level == 0)
