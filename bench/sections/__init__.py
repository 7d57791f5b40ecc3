"""The benchmark's sections, one per BENCH_ONLY group, run in this order by bench/run.py."""
