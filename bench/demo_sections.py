"""Per-section cost of a demo audit: wall seconds and process CPU seconds.

    python bench/demo_sections.py reports/mnist.yaml [--only robustness certify] [--profile 15]
        [--compile-cache DIR|off] [--compiles K] [--render] [--floor]

Runs each configured analyzer of the config once, in the config's order and with its settings,
on the model the config names (trained and saved first when no checkpoint is there), exactly as
`audit run` does. For each section it prints the wall time, the CPU time of the whole process
(all threads: on a machine shared with other jobs the wall time varies several-fold, the CPU time
much less).
`--profile K` adds the K functions with the largest cumulative time per section (cProfile;
env SORT=tottime changes the order).
It also counts XLA compiles (and their seconds, and the seconds spent tracing and lowering) per
section; `--compiles K` names the K functions with the most compile seconds.
`--render` also draws each section's figures as the HTML report does (matplotlib to PNG) and
prints their seconds in a column of their own (not in the wall time: `audit run` draws them on a
background thread while the next analyzer runs, `FigureRenderer`).
`--floor` runs every section a second time (fresh attack cache) with the model's apply wrapped in
a counter of the rows that go forward and backward through it, and prices them at the rows per
second of one jitted forward / input-gradient call at the audit's batch measured in this process:
the floor of the model calls a section makes. Only calls of the audited model count: a retraining
section's training steps and its evaluation of the retrained model are not in its floor.
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
    parser.add_argument("--floor", action="store_true", help="count model rows per section and price them")
    parser.add_argument("--compiles", type=int, default=0, help="print the K functions with the most compile seconds")
    parser.add_argument("--render", action="store_true", help="time drawing each section's report figures")
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
    print("| section | wall s | cpu s | compiles | compile s | trace+lower s | load |" + (" figures | draw s |" if args.render else ""))
    print("|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.render else ""))
    total_wall = total_cpu = total_draw = 0.0
    walls: dict[str, float] = {}
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
        result = run_analyzer(spec, model, data, settings=dict(config.analyzers.get(name, {})), seed=config.seed,
                              progress=False)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        walls[name] = wall
        total_compiles += _COMPILES["n"]
        drawn = ""
        if args.render:
            from audit.render.html import _section_figures

            d0 = time.perf_counter()
            figures = _section_figures(name, result)
            draw = time.perf_counter() - d0
            total_draw += draw
            drawn = f" {len(figures)} | {draw:.1f} |"
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {_COMPILES['n']} | {_COMPILES['s']:.1f} | "
              f"{_COMPILES['trace_s']:.1f} | {_load()} |{drawn}", flush=True)
        if args.compiles:
            top = sorted(_COMPILES["names"].items(), key=lambda kv: -kv[1][1])[: args.compiles]
            print("    compiled: " + ", ".join(f"{k} x{n} {s:.2f}s" for k, (n, s) in top), flush=True)
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(args.profile)
            print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[-int(os.environ.get("PROFILE_CHARS", 4000)):], flush=True)
    print(f"| total | {total_wall:.1f} | {total_cpu:.1f} | {total_compiles} | | | {_load()} |"
          + (f" | {total_draw:.1f} |" if args.render else ""))
    if args.floor:
        floor(model, data, config, names, walls)


def _counting(model, counts: dict):
    """`model` with its apply wrapped in an identity on the logits that counts the rows going
    forward (primal) and backward (cotangent) through it, at run time (host callbacks)."""
    import dataclasses
    import functools

    import jax

    def add(kind, n):
        counts[kind] += n

    @jax.custom_vjp
    def tap(logits):
        jax.debug.callback(functools.partial(add, "fwd", logits.shape[0]))
        return logits

    def tap_fwd(logits):
        jax.debug.callback(functools.partial(add, "fwd", logits.shape[0]))
        return logits, None

    def tap_bwd(_, g):
        jax.debug.callback(functools.partial(add, "bwd", g.shape[0]))
        return (g,)

    tap.defvjp(tap_fwd, tap_bwd)
    inner = model.apply
    return dataclasses.replace(model, apply=lambda params, x: tap(inner(params, x)), fast_gradients=False)


def _row_costs(model, batch: int) -> tuple[float, float]:
    """Seconds per row of one jitted forward and one input-gradient call of `batch` rows (best of
    15, interleaved)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from audit.models import _xla

    x = jnp.asarray(np.random.default_rng(0).random((batch, *model.input_shape), np.float32))
    y = jnp.zeros(batch, jnp.int32)
    with _xla.for_model(model):  # each priced with the compile options the audit uses for its kind
        fwd = _xla.jit(model.apply, kind="forward")
        grad = _xla.jit(jax.grad(lambda v: -jnp.sum(jnp.take_along_axis(
            jax.nn.log_softmax(model.apply(model.params, v)), y[:, None], 1))), kind="gradient")
        return _best_of(fwd, grad, model.params, x, batch)


def _best_of(fwd, grad, params, x, batch: int) -> tuple[float, float]:
    import jax

    jax.block_until_ready((fwd(params, x), grad(x)))
    tf, tg = [], []
    for _ in range(15):
        t = time.perf_counter(); jax.block_until_ready(fwd(params, x)); tf.append(time.perf_counter() - t)
        t = time.perf_counter(); jax.block_until_ready(grad(x)); tg.append(time.perf_counter() - t)
    return min(tf) / batch, min(tg) / batch


def floor(model, data, config, names, walls) -> None:
    """Rows through the model per section, priced at this process's best rows per second."""
    from audit.robustness import _attack_cache

    batch = 64 if data.kind == "image" else 512
    t_fwd, t_grad = _row_costs(model, batch)
    print(f"\nfloor: batch {batch}, forward {1e6 * t_fwd:.1f} us/row, input gradient {1e6 * t_grad:.1f} us/row "
          f"(load {_load()})")
    print("| section | forward rows | backward rows | floor s | wall s | x floor |")
    print("|---|---:|---:|---:|---:|---:|")
    total = 0.0
    _attack_cache.clear()  # the counted model shares attacks across its sections as a real run does
    counts = {"fwd": 0, "bwd": 0}
    counted = _counting(model, counts)
    for name in names:
        counts.update(fwd=0, bwd=0)
        spec = spec_for(name, ANALYZERS)
        run_analyzer(spec, counted, data, settings=dict(config.analyzers.get(name, {})), seed=config.seed,
                     progress=False)
        seconds = counts["fwd"] * t_fwd + counts["bwd"] * (t_grad - t_fwd)
        total += seconds
        ratio = walls.get(name, float("nan")) / seconds if seconds else float("nan")
        print(f"| {name} | {counts['fwd']:,} | {counts['bwd']:,} | {seconds:.1f} | {walls.get(name, float('nan')):.1f} "
              f"| {ratio:.1f} |", flush=True)
    print(f"| total | | | {total:.1f} | {sum(walls.values()):.1f} | {sum(walls.values()) / max(total, 1e-9):.1f} |")


if __name__ == "__main__":
    main()
