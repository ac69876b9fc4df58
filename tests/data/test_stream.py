"""Streaming a file larger than memory: the counts-based audit equals the in-memory one."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from audit import AuditInputError, fairness, imbalance
from audit.data import from_pandas, open_stream
from audit.models import Model

N = 900
OPTIONS = dict(target="label", sensitive=["sex", "age"], categorical=["job"], class_names=("no", "yes", "maybe"))


def _frame(seed: int = 0) -> pd.DataFrame:
    """Three classes; class "maybe" only after row 400 (chunks before it lack it); sex "other" only
    in rows 610..640 (one chunk of 300); age continuous (binned)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=N), rng.normal(size=N)
    label = np.where(x1 + 0.5 * rng.normal(size=N) > 0.3, "yes", "no").astype(object)
    label[400:][rng.random(N - 400) < 0.15] = "maybe"
    sex = rng.choice(["female", "male"], size=N).astype(object)
    sex[610:640] = "other"
    return pd.DataFrame({"x1": x1, "age": rng.integers(18, 80, size=N), "job": rng.choice(["a", "b", "c"], size=N),
                         "x2": np.round(x2, 3), "sex": sex, "label": label})


def _model(width: int) -> Model:
    w = np.random.default_rng(3).normal(size=(width, 3)).astype(np.float32)
    return Model.from_function(lambda p, x: x @ p, jnp.asarray(w), input_shape=(width,),
                               class_names=("no", "yes", "maybe"))


@pytest.fixture(scope="module", params=["csv", "parquet"])
def files(request, tmp_path_factory):
    df = _frame()
    path = tmp_path_factory.mktemp("stream") / f"table.{request.param}"
    if request.param == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, row_group_size=250)
    return df, str(path)


def _reference(df, stream):
    """The same rows in memory, encoded by the stream's encoding, all of them audited."""
    data = from_pandas(df, encoding=stream.encoding, **OPTIONS)
    return data.select(np.arange(len(data.y)))


def _same_metrics(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=0, abs=1e-12) or (np.isnan(a[k]) and np.isnan(b[k])), k


def test_streamed_counts_equal_in_memory(files):
    df, path = files
    stream = open_stream(path, chunk_rows=300, sample_rows=N, **OPTIONS)  # the sample is every row
    assert stream.n_rows == N and len(stream.sample.y) == N
    chunks = list(stream.chunks())
    assert [len(c.y) for c in chunks] == [300, 300, 300]
    assert (chunks[0].y != 2).all() and (chunks[2].y == 2).any()  # a class missing from a chunk
    assert [("other" in c.sensitive["sex"]) for c in chunks] == [False, False, True]  # a group in one chunk
    model = _model(len(stream.encoding.input_names))
    ref = _reference(df, stream)

    a = imbalance.evaluate(model, ref, split="train", threshold_split=None)
    b = imbalance.evaluate_stream(model, stream)
    np.testing.assert_array_equal(a.confusion, b.confusion)
    np.testing.assert_array_equal(a.reliability.counts, b.reliability.counts)
    _same_metrics(a.metrics(), b.metrics())

    fa = fairness.evaluate(model, ref, split="train", n_bootstrap=0, proxies=False, min_group_size=20)
    fb = fairness.evaluate_stream(model, stream, n_bootstrap=0, proxies=False, min_group_size=20)
    _same_metrics(fa.metrics(), fb.metrics())
    for x, y in zip(fa.attributes, fb.attributes):
        assert (x.name, x.groups, x.empty_groups, x.rule) == (y.name, y.groups, y.empty_groups, y.rule)
        np.testing.assert_array_equal(x.sizes, y.sizes)
        for tx, ty in zip(x.tables, y.tables):
            for m in tx.values:
                np.testing.assert_allclose(tx.values[m], ty.values[m], rtol=0, atol=1e-12)
            for m in tx.ci_low:  # Clopper-Pearson intervals from the counts
                np.testing.assert_allclose(tx.ci_low[m], ty.ci_low[m], rtol=0, atol=1e-12)
                np.testing.assert_allclose(tx.ci_high[m], ty.ci_high[m], rtol=0, atol=1e-12)
    assert "other" in fb.attributes[[a.name for a in fb.attributes].index("sex")].groups
    assert [f.id for f in fa.findings] == [f.id for f in fb.findings]


def test_sample_is_seeded_and_counts_do_not_depend_on_it(files):
    df, path = files
    small = open_stream(path, chunk_rows=128, sample_rows=200, seed=4, **OPTIONS)
    again = open_stream(path, chunk_rows=333, sample_rows=200, seed=4, **OPTIONS)
    np.testing.assert_array_equal(small.sample_positions, again.sample_positions)  # not tied to chunk_rows
    assert len(small.sample_positions) == 200 and len(np.unique(small.sample_positions)) == 200
    model = _model(len(small.encoding.input_names))
    ref = _reference(df, small)
    a = imbalance.evaluate(model, ref, split="train", threshold_split=None)
    b = imbalance.evaluate_stream(model, small)
    np.testing.assert_array_equal(a.confusion, b.confusion)
    for k in ("accuracy", "balanced_accuracy", "macro_f1", "mcc", "brier"):
        assert b.summary[k] == pytest.approx(a.summary[k], rel=0, abs=1e-12)
    # the rank-based metric is the sample's: scikit-learn on exactly those rows
    from sklearn.metrics import roc_auc_score

    p = model.predict_proba(small.sample.X).astype(np.float64)
    assert b.per_class["roc_auc"][1] == pytest.approx(roc_auc_score(small.sample.y == 1, p[:, 1]), abs=1e-12)
    assert b.provenance.settings["stream"]["sample_rows"] == 200


def test_poisson_bootstrap_does_not_depend_on_chunks(files):
    _, path = files
    s1 = open_stream(path, chunk_rows=97, sample_rows=300, **OPTIONS)
    s2 = open_stream(path, chunk_rows=450, sample_rows=300, **OPTIONS)
    model = _model(len(s1.encoding.input_names))
    r1 = fairness.evaluate_stream(model, s1, attributes=["sex"], n_bootstrap=40, proxies=False, seed=2)
    r2 = fairness.evaluate_stream(model, s2, attributes=["sex"], n_bootstrap=40, proxies=False, seed=2)
    d1, d2 = r1.attributes[0].disparities, r2.attributes[0].disparities
    for x, y in zip(d1, d2):
        assert x.ci_low == pytest.approx(y.ci_low, abs=1e-12) and x.ci_high == pytest.approx(y.ci_high, abs=1e-12)
    finite = [d for d in d1 if np.isfinite(d.value)]
    assert finite and all(d.ci_low < d.ci_high for d in finite)


def test_parquet_in_memory_equals_csv(tmp_path):
    from audit.data import from_csv, from_parquet

    df = _frame()
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    a, b = from_csv(tmp_path / "t.csv", **OPTIONS), from_parquet(tmp_path / "t.parquet", **OPTIONS)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.fingerprint() == b.fingerprint()


def test_bad_first_chunk_is_one_clear_error(tmp_path):
    df = _frame()
    df["x2"] = df["x2"].astype(object)
    df.loc[3, "x2"] = "abc"
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(AuditInputError, match=r"rows 0\.\.99.*column 'x2' row 3"):
        open_stream(tmp_path / "bad.csv", chunk_rows=100, **OPTIONS)
    later = _frame()
    later["x2"] = later["x2"].astype(object)
    later.loc[250, "x2"] = "abc"
    later.to_csv(tmp_path / "later.csv", index=False)
    with pytest.raises(AuditInputError, match=r"rows 200\.\.299.*column 'x2' row 50"):
        open_stream(tmp_path / "later.csv", chunk_rows=100, **OPTIONS)
    with pytest.raises(AuditInputError, match="target column"):
        open_stream(tmp_path / "bad.csv", chunk_rows=100, **{**OPTIONS, "target": "nope"})
    (tmp_path / "dup.csv").write_text("a,a,label\n1,2,no\n3,4,yes\n")
    with pytest.raises(AuditInputError, match="more than once"):
        open_stream(tmp_path / "dup.csv", target="label")
    with pytest.raises(AuditInputError, match=r"\.csv or \.parquet"):
        open_stream(tmp_path / "table.txt", target="label")
    with pytest.raises(AuditInputError, match="chunk_rows"):
        open_stream(tmp_path / "bad.csv", chunk_rows=0, **OPTIONS)
    good = _frame()
    good.to_parquet(tmp_path / "t.parquet")
    stream = open_stream(tmp_path / "t.parquet", sample_rows=300, **OPTIONS)
    with pytest.raises(AuditInputError, match="do not apply to a streamed audit"):
        imbalance.evaluate_stream(_model(len(stream.encoding.input_names)), stream, split="test")


def test_streamed_pipeline_and_config(files, tmp_path):
    from audit.pipeline import AuditConfig, run
    from audit.pipeline._run import load_stream

    df, path = files
    fmt = "csv" if path.endswith(".csv") else "parquet"
    config = AuditConfig.from_dict({
        "data": {fmt: path, **OPTIONS, "stream": {"chunk_rows": 250, "sample_rows": 400}},
        "analyzers": {"imbalance": {}, "fairness": {"n_bootstrap": 0, "proxies": False}, "slices": {}},
        "policy": [{"metric": "imbalance.accuracy", "min": 0.0}]})
    stream = load_stream(config)
    model = _model(len(stream.encoding.input_names))
    report = run(model, stream.sample, config, stream=stream, progress=False)
    assert not report.incomplete
    direct = imbalance.evaluate_stream(model, stream)
    np.testing.assert_array_equal(report.sections["imbalance"].result.confusion, direct.confusion)
    assert report.sections["fairness"].result.n_rows == N
    note = next(f for f in report.findings if f.id == "data:streamed")
    assert "slices" in note.message and f"{N} rows" in note.message
    assert report.metadata["data"]["stream"]["chunks"] == 4
    for bad, match in (({"chunk_rows": 0}, "positive integer"), ({"rows": 5}, "unknown key")):
        with pytest.raises(AuditInputError, match=match):
            AuditConfig.from_dict({"data": {fmt: path, "target": "label", "stream": bad}})
    with pytest.raises(AuditInputError, match="exactly one of"):
        AuditConfig.from_dict({"data": {"csv": path, "parquet": path, "target": "label"}})


def _readme_block() -> list[str]:
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = open(os.path.join(root, "README.md")).read()
    part = text[text.index("### Data larger than memory"):]
    return [line.split("  #")[0].strip() for line in re.search(r"```\n(.*?)```", part, re.S).group(1).splitlines()]


def test_readme_stream_commands_name_a_valid_config():
    import os
    import shlex

    from audit.cli import build_parser
    from audit.pipeline import AuditConfig

    make, run_line = _readme_block()
    assert "credit_big.parquet" in make
    args = shlex.split(run_line)
    build_parser().parse_args(args[1:])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    config = AuditConfig.from_yaml(os.path.join(root, args[2]))
    assert config.data["stream"] and config.data["parquet"].endswith("credit_big.parquet")


@pytest.mark.slow
def test_readme_stream_commands_as_written(tmp_path):
    import os
    import shlex
    import shutil
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    shutil.copytree(os.path.join(root, "reports"), tmp_path / "reports", ignore=shutil.ignore_patterns("out", "screenshots"))
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    codes = []
    for line in _readme_block():
        codes.append(subprocess.run(shlex.split(line), cwd=tmp_path, env=env, capture_output=True, text=True,
                                    timeout=1800).returncode)
    assert codes == [0, 1]  # the audit fails its sex rule, as the README says
    assert (tmp_path / "reports" / "out" / "credit-stream" / "report.html").is_file()
