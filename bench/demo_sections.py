"""Per-section cost of a demo audit: wall seconds and process CPU seconds.

    python bench/demo_sections.py reports/mnist.yaml [--only robustness certify] [--profile 15]
        [--compile-cache DIR|off] [--compiles K]

Runs each configured analyzer of the config once, in the config's order and with its settings,
on the model the config names (trained and saved first when no checkpoint is there), exactly as
`audit run` does. For each section it prints the wall time, the CPU time of the whole process
(all threads: on a machine shared with other jobs the wall time varies several-fold, the CPU time
much less).
`--profile K` adds the K functions with the largest cumulative time per section (cProfile).
It also counts XLA compiles (and their seconds, and the seconds spent tracing and lowering) per
section; `--compiles K` names the K functions with the most compile seconds.
The load average is printed with every row: quote ratios measured in one run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pathlib
import pstats
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from audit.pipeline import AuditConfig  # noqa: E402
from audit.pipeline._registry import ANALYZERS, run_analyzer, spec_for  # noqa: E402
from audit.pipeline._run import load_data, load_model  # noqa: E402


def _load() -> str:
    return "%.1f" % os.getloadavg()[0]


_COMPILES = {"n": 0, "s": 0.0, "trace_s": 0.0, "names": {}}


def _on_duration(event: str, duration: float, **kwargs) -> None:
    """Count XLA backend compiles (and their seconds) and jaxpr tracing seconds."""
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILES["n"] += 1
        _COMPILES["s"] += duration
        name = kwargs.get("fun_name", "?")
        count, seconds = _COMPILES["names"].get(name, (0, 0.0))
        _COMPILES["names"][name] = (count + 1, seconds + duration)
    elif event in ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration"):
        _COMPILES["trace_s"] += duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--only", nargs="+", help="run only these sections")
    parser.add_argument("--profile", type=int, default=0, help="print the top K cumulative functions")
    parser.add_argument("--compile-cache", default="off", help="JAX compilation cache folder, or off (default)")
    parser.add_argument("--compiles", type=int, default=0, help="print the K functions with the most compile seconds")
    args = parser.parse_args()
    import jax.monitoring

    jax.monitoring.register_event_duration_secs_listener(_on_duration)
    if args.compile_cache != "off":
        import jax

        jax.config.update("jax_compilation_cache_dir", os.path.abspath(args.compile_cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    config = AuditConfig.from_yaml(args.config)
    data = load_data(config)
    model = load_model(config, data, progress=False)
    names = [n for n in config.analyzers if not args.only or n in args.only]
    print(f"{config.name}: {len(names)} sections, {os.cpu_count()} cores, load average {_load()} at start")
    print("| section | wall s | cpu s | compiles | compile s | trace+lower s | load |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    total_wall = total_cpu = 0.0
    total_compiles = 0
    for name in names:
        spec = spec_for(name, ANALYZERS)
        if spec.applies_to(model, data):
            continue
        profiler = cProfile.Profile() if args.profile else None
        _COMPILES.update(n=0, s=0.0, trace_s=0.0, names={})
        w0, c0 = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        run_analyzer(spec, model, data, settings=dict(config.analyzers.get(name, {})), seed=config.seed,
                     progress=False)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        total_compiles += _COMPILES["n"]
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {_COMPILES['n']} | {_COMPILES['s']:.1f} | "
              f"{_COMPILES['trace_s']:.1f} | {_load()} |", flush=True)
        if args.compiles:
            top = sorted(_COMPILES["names"].items(), key=lambda kv: -kv[1][1])[: args.compiles]
            print("    compiled: " + ", ".join(f"{k} x{n} {s:.2f}s" for k, (n, s) in top), flush=True)
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(args.profile)
            print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[-4000:], flush=True)
    print(f"| total | {total_wall:.1f} | {total_cpu:.1f} | {total_compiles} | | | {_load()} |")


if __name__ == "__main__":
    main()
