"""Benchmarks, run from the checkout as modules: ``python -m bench.speed``, ``python -m bench.quality``,
``python -m bench.score``, ``python -m bench.time_to_quality``, ``python -m bench.web``.

They use fastnst's public functions only and write their tables into BENCHMARKS.md (sections.py).
"""
