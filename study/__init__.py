"""study: the main job. Data sets, DNI training, sigma_train x sigma_val sweeps, deployment over time.

``xbarsim train | sweep | deploy`` (also ``python -m study ...``) are :mod:`study.cli`.
Modules: :mod:`study.data` (data sets), :mod:`study.experiment` (model factory, training,
evaluation, checkpoints, deployment runs), :mod:`study.sweep` (jobs, resume, aggregation),
:mod:`study.executor` (process pool, Dask), :mod:`study.results` (files, statistics, plots).
Uses models (the layers), crossbar and xbarsim; nothing below it imports study. Importing
this package loads nothing heavy. See study/README.md and docs/MAIN_JOB.md.
"""
