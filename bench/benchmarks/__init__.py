"""One module per benchmark, each registering itself with `bench.registry.register` (see that module).

To add a benchmark: write `bench/benchmarks/<name>.py` (a `main(argv)` that prints one JSON document, ending with
`BENCHMARK = register(Benchmark(name="<name>", ...))`) and add `<name>` below. This package imports none of its
modules itself: `python -m bench.benchmarks.<name>` must start with nothing of the others loaded.
"""

# The order the benchmarks run in, and the order of their sections in RESULTS.md and of their goals.
RUN_ORDER: tuple[str, ...] = ("streaming", "vectors", "batch", "stack")
