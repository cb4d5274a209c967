"""Benchmarks of the whole connector on one machine: real broker, simulators, services as subprocesses.

``python -m bench`` runs every scenario and writes ``bench/results/<scenario>.json`` and
``docs/benchmarks.md``; ``python -m bench report`` rebuilds the page from the JSON files. This is a
harness, not a test suite: figures depend on the machine, so each result carries the machine's facts
and load, and ratios measured within one run are the figures to compare across machines.
"""
