"""pg_eventstore benchmarks: a harness and the workloads it measures. Entry point: bench/run.py."""
