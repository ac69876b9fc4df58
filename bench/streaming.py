"""Data larger than memory: the streamed imbalance + fairness audit at 1M and 10M rows.

    python bench/streaming.py                      # 1M and 10M rows, chunks of 200k, 100 replicates
    python bench/streaming.py --in-memory          # also the in-memory audit (files up to 2M rows)

For each size a credit-like Parquet file (the bundled credit generator, 200k rows per row group,
written chunk by chunk) is generated under /tmp and deleted afterwards. Each audit runs in its own
process so that its peak RSS (resource.getrusage, ru_maxrss) is its own: `open_stream` (one
validating pass that draws the seeded sample and fits the encoding), a logistic-regression model
fitted on the sample (scikit-learn, wrapped with Model.from_function), then one chunked pass that
feeds the imbalance and fairness sinks (sex, age, sex&age; Poisson bootstrap). Peak memory must not
grow with the row count. `--in-memory` also runs `from_pandas` + `imbalance.evaluate` +
`fairness.evaluate` on the whole file (the peer: what the toolkit did before streaming).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

OPTIONS = dict(target="default", sensitive=["sex", "age"], class_names=("no", "yes"),
               categorical=["employment", "housing", "purpose", "sector"])


def _generate(path: str, rows: int, chunk: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from audit.data._credit import credit_frame

    writer = None
    for k, start in enumerate(range(0, rows, chunk)):
        frame = credit_frame(min(chunk, rows - start), seed=1000 + k)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def _model(sample):
    """Logistic regression fitted on the stream's sample, as a JAX model."""
    import jax.numpy as jnp
    from sklearn.linear_model import LogisticRegression

    from audit.models import Model

    train = sample.splits["train"]
    lr = LogisticRegression(max_iter=500).fit(sample.X[train], sample.y[train])
    params = {"w": jnp.asarray(lr.coef_[0], jnp.float32), "b": jnp.asarray(lr.intercept_[0], jnp.float32)}

    def apply(p, x):
        z = x @ p["w"] + p["b"]
        return jnp.stack([jnp.zeros_like(z), z], axis=-1)

    return Model.from_function(apply, params, input_shape=(sample.X.shape[1],), class_names=("no", "yes"))


class _Sampler:
    """A thread that samples this process's resident set size every `every` seconds (/proc/self/statm),
    so the bench can show the RSS of the chunked pass levels off instead of climbing."""

    def __init__(self, every: float = 0.2):
        import threading

        self.samples: list[tuple[float, float]] = []
        self.every, self.stop = every, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self.stop.is_set():
            with open("/proc/self/statm") as f:
                self.samples.append((time.perf_counter(), int(f.read().split()[1]) * page / 2**20))
            self.stop.wait(self.every)

    def __enter__(self) -> "_Sampler":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def halves(self) -> tuple[float, float]:
        """Peak RSS (MB) in the first and the second half of the sampled time."""
        t = np.array([s[0] for s in self.samples])
        rss = np.array([s[1] for s in self.samples])
        mid = (t[0] + t[-1]) / 2
        return float(rss[t <= mid].max()), float(rss[t > mid].max() if (t > mid).any() else rss.max())


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def one(path: str, *, chunk_rows: int, sample_rows: int, boot: int, in_memory: bool) -> dict:
    """Runs in a fresh process: the streamed (or in-memory) audit of `path`."""
    from audit import fairness, imbalance
    from audit.data import open_stream

    base = _peak_mb()
    t0 = time.perf_counter()
    stream = open_stream(path, chunk_rows=chunk_rows, sample_rows=sample_rows, seed=0, **OPTIONS)
    t_open = time.perf_counter() - t0
    model = _model(stream.sample)
    out = {"rows": stream.n_rows, "open_s": t_open, "mode": "in-memory" if in_memory else "streamed"}
    t1 = time.perf_counter()
    if in_memory:
        import pandas as pd

        from audit.data import from_pandas

        data = from_pandas(pd.read_parquet(path), encoding=stream.encoding, **OPTIONS)
        data = data.select(np.arange(len(data.y)))
        imb = imbalance.evaluate(model, data, split="train", threshold_split=None)
        fair = fairness.evaluate(model, data, split="train", n_bootstrap=boot, proxies=False)
    else:
        sinks = [imbalance.ImbalanceSink(model, stream), fairness.FairnessSink(model, stream, n_bootstrap=boot,
                                                                               proxies=False)]
        with _Sampler() as sampler:
            stream.score(model, sinks)
        out["pass_rss_first_half_mb"], out["pass_rss_second_half_mb"] = sampler.halves()
        proba = stream.sample_proba(model)
        imb, fair = (s.result(proba) for s in sinks)
    out["audit_s"] = time.perf_counter() - t1
    out["rows_per_s"] = stream.n_rows / (out["open_s"] + out["audit_s"])
    out["peak_rss_mb"] = _peak_mb()
    out["start_rss_mb"] = base
    out["accuracy"] = imb.summary["accuracy"]
    out["dp_difference_sex"] = next(d.value for d in fair.attributes[[a.name for a in fair.attributes].index("sex")]
                                    .disparities if d.name == "demographic_parity_difference")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--sample-rows", type=int, default=20_000)
    parser.add_argument("--boot", type=int, default=100, help="Poisson bootstrap replicates for the disparities")
    parser.add_argument("--in-memory", action="store_true",
                        help="also audit each file of at most 2M rows in memory (the peer)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="streamed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, chunk_rows=args.chunk_rows, sample_rows=args.sample_rows, boot=args.boot,
                             in_memory=args.mode == "in-memory")))
        return
    rows_out = []
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="audit-stream-") as folder:
            path = os.path.join(folder, f"credit_{rows}.parquet")
            t = time.perf_counter()
            _generate(path, rows, args.chunk_rows)
            print(f"generated {rows} rows in {time.perf_counter() - t:.0f} s ({os.path.getsize(path) / 1e6:.0f} MB)",
                  file=sys.stderr, flush=True)
            for mode in ("streamed", "in-memory") if args.in_memory and rows <= 2_000_000 else ("streamed",):
                cmd = [sys.executable, __file__, "--one", path, "--mode", mode, "--chunk-rows", str(args.chunk_rows),
                       "--sample-rows", str(args.sample_rows), "--boot", str(args.boot)]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode:
                    print(done.stderr[-2000:], file=sys.stderr)
                    raise SystemExit(done.returncode)
                rows_out.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(rows_out[-1], file=sys.stderr, flush=True)
    print(f"\nchunk_rows={args.chunk_rows}, sample_rows={args.sample_rows}, Poisson bootstrap {args.boot} replicates; "
          "imbalance + fairness (sex, age, sex&age)\n")
    print("| rows | mode | open + sample (s) | audit pass (s) | rows/s | peak RSS (MB) | pass RSS 1st / 2nd half (MB) "
          "| accuracy | DP diff (sex) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows_out:
        halves = (f"{r['pass_rss_first_half_mb']:.0f} / {r['pass_rss_second_half_mb']:.0f}"
                  if "pass_rss_first_half_mb" in r else "")
        print(f"| {r['rows']:,} | {r['mode']} | {r['open_s']:.1f} | {r['audit_s']:.1f} | {r['rows_per_s']:,.0f} | "
              f"{r['peak_rss_mb']:.0f} | {halves} | {r['accuracy']:.4f} | {r['dp_difference_sex']:.4f} |")


if __name__ == "__main__":
    main()
