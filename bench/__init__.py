"""The benchmarks: each measures one path of the platform next to a baseline measured in the same run, on the same
machine, with the same data (the machine is shared and noisy: the ratio is the number to quote).

- `bench/benchmarks/<name>.py`: one module per benchmark. It measures in its own process (`python -m
  bench.benchmarks.<name> [--quick]` prints one JSON document on stdout, progress on stderr) and registers itself
  with `bench.registry.register`: its name, what it measures, its entry function, its quick and full arguments, and
  how its document becomes a section of results.json and RESULTS.md. A new benchmark is a new module there plus its
  name in `bench.benchmarks.RUN_ORDER`.
- `bench.cli` (`python -m bench`; `harness bench` is the same with a summary table): the arguments.
- `bench.runner`: runs the registered benchmarks one after the other, each in its own process (and, on request, once
  more under cProfile: `bench.profiling` turns the dump into tables).
- `bench.stats`: the median and spread of repeated runs, and the ratio to a baseline.
- `bench.goals`: the goals checked against the results; `bench.results`: results.json; `bench.render`: RESULTS.md;
  `bench.machine`: the machine a run happened on.
"""
