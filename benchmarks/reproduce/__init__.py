"""Reproduce Qin and Vucinic (2018) on row-by-row MNIST with xbarsim's own commands, and go past it.

``python -m benchmarks reproduce`` (also ``xbarsim bench reproduce``) runs the whole study as a
sequence of ``xbarsim sweep`` / ``xbarsim deploy`` commands with fixed seeds, one *stage* after
another, each writing under ``--out`` (default ``benchmarks/results/reproduction``):

=============  =================================================================================
stage          what it runs (folder)
=============  =================================================================================
speech         the DNI sweep on JapaneseVowels (``speech/``)
mnist          the paper's sweep on row-by-row MNIST, RNN and LSTM, relative noise (``mnist/``)
clean          every ``mnist`` model on the full 10k test set without noise (``clean/<job>/``)
deploy         conventional (sigma_train 0) and the best DNI model of each architecture on the
               pcm and rram presets, 1 s .. 1 year, drift compensation on/off (``deploy/``)
device         DNI with the device's own noise: the same networks trained on the pcm preset
               (``device_pcm/``)
device_deploy  those models deployed like ``deploy`` (``deploy/``)
conventions    a smaller sweep in each noise convention: relative, absolute, snr_db
               (``conventions/<convention>/``)
report         per-claim statistics with confidence intervals from the files above:
               ``claims.json``, ``claims.md``, ``deploy_summary.csv``, plots, and the generated
               block of ``--doc`` (docs/REPRODUCTION.md)
=============  =================================================================================

Every stage skips the work already done: a sweep resumes per job (and is not called at all
when all its jobs are finished, so its files stay byte-identical), a deploy is skipped when
its ``deploy.json`` exists with the same command. A killed run loses at most the jobs in
flight; run the same command again to resume. Wall time per stage and run, and every
command, are logged to ``stages.json``.

Profiles: ``full`` (the study, sized for a 2-core machine) and ``tiny`` (digits, one seed,
two levels, deployment on pcm only; seconds; the tests run it).

Modules: :mod:`.profiles` (sizes, stage names), :mod:`.runner` (commands through study's
executor, ``stages.json``), :mod:`.stages` (what each stage runs), :mod:`.claims` (the
statistics), :mod:`.report` (claims.md, plots, the doc block), :mod:`.cli` (``main``).
"""
from __future__ import annotations

from .claims import amplitude, compute_claims, deploy_table, paired_ci, sweep_claims
from .cli import main
from .profiles import PROFILES, STAGES
from .report import MARK_BEGIN, MARK_END, deploy_verdicts, write_report
from .runner import Runner
from .stages import Study, best_dni_levels

__all__ = ["PROFILES", "STAGES", "main", "compute_claims", "sweep_claims", "deploy_table", "paired_ci", "amplitude",
           "write_report", "deploy_verdicts", "MARK_BEGIN", "MARK_END", "Runner", "Study", "best_dni_levels"]
