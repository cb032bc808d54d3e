"""``dastrax bench``: the project's benchmarks (``python -m dastrax.bench``).

:mod:`dastrax.bench.steps` runs and reports them; :mod:`dastrax.bench.setup` makes their
data; ``minbias``, ``allow`` and ``extend`` are the variants.
"""

from __future__ import annotations

from dastrax.bench.steps import bench_command, run_bench, run_scaling

__all__ = ["bench_command", "run_bench", "run_scaling"]
