"""``python -m models train|sweep|deploy ...``: kept for old scripts; the commands live in :mod:`study`.

The same as ``python -m study ...`` and ``xbarsim train|sweep|deploy``. models never
imports study (study sits on top of models), so this entry point hands over by module name.
"""
import runpy

if __name__ == "__main__":
    runpy.run_module("study", run_name="__main__", alter_sys=True)
