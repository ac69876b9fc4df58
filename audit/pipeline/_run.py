"""`run()`: every configured analyzer on one model and data set, then the policy, as an AuditReport."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any, Callable

import numpy as np

from audit import parallel
from audit._versions import library_versions
from audit.data import attribute_groups
from audit.errors import AuditInputError
from audit.models._xla import options_for
from audit.pipeline._config import AuditConfig
from audit.pipeline._provenance import provenance
from audit.pipeline._registry import ANALYZERS, Registry, check_settings, run_analyzer, spec_for
from audit.pipeline._report import AuditReport, Section
from audit.pipeline._schema import check_against_data
from audit.results import Finding, to_jsonable

_LIBRARIES = ("flax-audit", "jax", "jaxlib", "flax", "optax", "numpy", "scikit-learn", "shap", "lime",
              "fairlearn", "imbalanced-learn")


def _log(message: str, progress: bool) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _advisory(section: str, finding: Finding) -> Finding:
    """An analyzer's own finding, namespaced by section. Analyzers advise and the policy decides:
    an analyzer's "fail" becomes "warn", so only policy rules can fail an audit."""
    status = "warn" if finding.status == "fail" else finding.status
    return Finding(**{**finding.to_dict(), "id": f"{section}:{finding.id}", "status": status})


def _streamed(names, registry, model, data, stream, config, progress) -> tuple[dict, dict, list, dict]:
    """One pass over a file larger than memory for every configured analyzer that counts
    (`AnalyzerSpec.stream_sink`): (results, seconds, errors as (name, why), what the pass saw)."""
    sinks, results, seconds, errors = {}, {}, {}, []
    for name in names:
        spec = spec_for(name, registry)
        if spec.stream_sink is None or spec.applies_to(model, data):
            continue
        try:
            sinks[name] = spec.stream_sink(model, stream, seed=config.seed, **dict(config.analyzers.get(name, {})))
        except AuditInputError as exc:
            errors.append((name, str(exc)))
    seen: dict[str, Any] = {}
    if sinks:
        _log(f"streaming {stream.n_rows} rows of {stream.path} in chunks of {stream.chunk_rows} "
             f"for {', '.join(sinks)} ...", progress)
        t0 = time.perf_counter()
        try:
            seen = stream.score(model, list(sinks.values()))
        except AuditInputError as exc:  # a bad chunk midway: every streamed section says why
            return {}, {}, errors + [(name, str(exc)) for name in sinks], {}
        sample_proba = stream.sample_proba(model)
        for name, sink in sinks.items():
            t1 = time.perf_counter()
            try:
                results[name] = sink.result(sample_proba)
            except AuditInputError as exc:
                errors.append((name, str(exc)))
            seconds[name] = sink.seconds + time.perf_counter() - t1
        _log(f"streamed in {time.perf_counter() - t0:.1f} s", progress)
    return results, seconds, errors, seen


def run(model, data, config: AuditConfig | None = None, *, registry: Registry | None = None,
        progress: bool = True, stream=None, on_section: Callable[[str, Any], None] | None = None) -> AuditReport:
    """Audit `model` on `data` with the analyzers and policy of `config`.

    Analyzers run in the order of `config.analyzers` (when the config names none: every
    analyzer that does not retrain the model); one that fails with an error is recorded as
    failed with the reason (a "fail" finding; `report.incomplete` is True) and the rest still run;
    one that does not apply (e.g. fairness without sensitive attributes) is recorded as
    skipped with the reason. Policy rules decide pass / fail; the analyzers' own checks are
    reported as pass / warn. The same seed gives the same numbers. `registry` (name ->
    AnalyzerSpec) is where analyzer names are looked up: by default the config's, else
    `audit.pipeline.ANALYZERS`.

    With `stream` (an `audit.data.TabularStream`, whose `sample` is `data`), the analyzers that
    count (imbalance, fairness) run over every row of the file in one chunked pass, and every
    other analyzer runs on the seeded sample `data`; a "data:streamed" finding says which is which.
    `on_section(name, result)` is called as each analyzer finishes (the CLI draws its figures then).
    """
    config = config or AuditConfig(registry=registry)
    if registry is None:
        registry = ANALYZERS if config.registry is None else config.registry
    elif registry is not config.registry:  # the config was checked against another registry
        for name, settings in config.analyzers.items():
            check_settings(name, dict(settings), lambda key, _n=name: f"'analyzers.{_n}.{key}'", registry)
    model.check_data(data)
    check_against_data(config, data)  # before any analyzer runs
    names = list(config.analyzers) or [n for n, spec in registry.items() if not spec.retrains]
    sections: dict[str, Section] = {}
    findings: list[Finding] = []
    start = time.perf_counter()
    streamed, stream_seconds, stream_errors, seen = ({}, {}, [], {}) if stream is None else \
        _streamed(names, registry, model, data, stream, config, progress)
    failed_early = dict(stream_errors)
    for i, name in enumerate(names, 1):
        spec = spec_for(name, registry)
        reason = spec.applies_to(model, data)
        if reason:
            _log(f"[{i}/{len(names)}] {spec.title}: skipped ({reason})", progress)
            sections[name] = Section(name=name, title=spec.title, skipped=reason)
            continue
        _log(f"[{i}/{len(names)}] {spec.title} ...", progress)
        t0 = time.perf_counter()
        try:
            if name in failed_early:
                raise AuditInputError(failed_early[name])
            if name in streamed:
                result = streamed[name]
                t0 -= stream_seconds[name]
            else:
                result = run_analyzer(spec, model, data, settings=dict(config.analyzers.get(name, {})),
                                      seed=config.seed, progress=progress)
        except Exception as exc:  # noqa: BLE001 - keep the finished sections; say which one failed and why
            why = str(exc) if isinstance(exc, AuditInputError) else f"{type(exc).__name__}: {exc}"
            _log(f"[{i}/{len(names)}] {spec.title} FAILED: {why}", progress)
            sections[name] = Section(name=name, title=spec.title, failed=why, seconds=time.perf_counter() - t0)
            findings.append(Finding(id=f"{name}:failed", status="fail", title=f"{spec.title} did not finish",
                                    message=f"The {name} analyzer stopped with an error, so this report is "
                                            f"incomplete: {why}"))
            continue
        seconds = time.perf_counter() - t0
        _log(f"[{i}/{len(names)}] {spec.title} done in {seconds:.1f} s", progress)
        sections[name] = Section(name=name, title=spec.title, result=result, seconds=seconds)
        findings.extend(_advisory(name, f) for f in result.findings)
        if on_section is not None:
            on_section(name, result)
    unknown = dict(getattr(data, "unknown_levels", {}) or {})
    if unknown:
        touched = int((np.asarray(data.raw)[:, [data.encoding.raw_names.index(c) for c in unknown]] < 0).any(axis=1).sum())
        findings.append(Finding(
            id="data:unknown_levels", status="warn",
            title=f"{touched} of {len(data)} rows have category levels the encoding never saw",
            message="These rows were encoded with an all-zero one-hot for the column(s) "
                    + ", ".join(f"{c} ({n} rows)" for c, n in sorted(unknown.items()))
                    + "; the model never saw these levels, so its outputs on them are extrapolations.",
            value=float(touched)))
    if stream is not None:
        findings.append(_stream_finding(stream, seen, streamed, sections))
    report = AuditReport(name=config.name, sections=sections, findings=(), metadata={})
    metrics = report.metrics()
    policy = [rule.evaluate(metrics) for rule in config.policy]
    metadata = {
        "config": config.to_dict(), "seed": config.seed, "libraries": library_versions(_LIBRARIES),
        "platform": f"{platform.system()} {platform.machine()}",
        "compile_options": options_for(model),  # XLA options the analyzers compiled with
        "data": {**data.summary(), "fingerprint": data.fingerprint(), "groups": group_sizes(data),
                 **({} if stream is None else {"stream": {**stream.summary(), **seen}})},
        "model": {**model.summary(), "training": (model.metadata or {}).get("training")},
        "durations": {**{n: s.seconds for n, s in sections.items()}, "total": time.perf_counter() - start},
        "provenance": provenance(config_source=config.source, model=model),
    }
    return AuditReport(name=config.name, sections=sections, findings=tuple(policy + findings),
                       metadata=to_jsonable(metadata))


def group_sizes(data) -> dict[str, list[list]]:
    """{attribute: [[group, rows in the data, rows in the test split], ...]} per sensitive attribute,
    grouped as every analyzer groups it (continuous attributes binned), for the model card."""
    test = data.splits.get("test")
    out = {}
    for attribute in sorted(data.sensitive):
        whole = attribute_groups(data, attribute)
        tested = np.bincount(whole.codes[test], minlength=len(whole.labels)) if test is not None else None
        out[attribute] = [[label, int(n), None if tested is None else int(tested[k])]
                          for k, (label, n) in enumerate(zip(whole.labels, whole.sizes))]
    return out
def _stream_finding(stream, seen: dict, streamed: dict, sections: dict) -> Finding:
    """Which sections counted every row of the file and which ran on its seeded sample."""
    counted = sorted(streamed)
    sampled = sorted(n for n, s in sections.items() if n not in streamed and not s.skipped and not s.failed)
    unknown = seen.get("unknown_levels") or {}
    message = (f"The data file {stream.path} has {stream.n_rows} rows, read in {seen.get('chunks', 0)} chunks of at "
               f"most {stream.chunk_rows}. " + (f"Counted over every row: {', '.join(counted)} (their ROC-AUC, "
               "thresholds and proxies on the sample). " if counted else "")
               + (f"Run on a seeded sample of {len(stream.sample)} rows (seed {stream.seed}; the same sample fitted "
                  f"the encoding): {', '.join(sampled)}." if sampled else
                  f"The encoding was fitted on a seeded sample of {len(stream.sample)} rows (seed {stream.seed})."))
    if unknown:
        message += (" Rows with category levels the sample never saw (encoded all-zero): "
                    + ", ".join(f"{c} ({n} rows)" for c, n in sorted(unknown.items())) + ".")
    return Finding(id="data:streamed", status="warn" if unknown else "pass",
                   title=f"Streamed {stream.n_rows} rows; sampled {len(stream.sample)}", message=message,
                   value=float(stream.n_rows))


def _file_options(d: dict) -> tuple[str, dict]:
    source = "csv" if "csv" in d else "parquet"
    return d[source], {k: v for k, v in d.items() if k not in (source, "stream")}


def load_data(config: AuditConfig):
    """The Dataset a config names (bundled, CSV or Parquet); for a streamed file (data.stream), its
    seeded sample (`load_stream` reads the whole file)."""
    from audit import data as data_module

    d = dict(config.data)
    if not d:
        raise AuditInputError("the config has no 'data' section; name a bundled dataset "
                              "(data: {dataset: credit}) or a CSV file.")
    if "dataset" in d:
        return data_module.load(d["dataset"], seed=config.seed, **dict(d.get("options") or {}))
    if d.get("stream"):
        return load_stream(config).sample
    path, options = _file_options(d)
    if "csv" in d:
        return data_module.from_csv(path, seed=config.seed, **options)
    return data_module.from_parquet(path, seed=config.seed, **options)


def load_stream(config: AuditConfig):
    """The `TabularStream` of a config whose data section has `stream:`, else None."""
    from audit import data as data_module

    d = dict(config.data)
    if not d.get("stream"):
        return None
    if "dataset" in d:
        raise AuditInputError("data.stream applies to a 'csv' or 'parquet' file, not a bundled dataset.")
    path, options = _file_options(d)
    sizes = d["stream"] if isinstance(d["stream"], dict) else {}
    return data_module.open_stream(path, seed=config.seed, **sizes, **options)


def load_model(config: AuditConfig, data, *, progress: bool = True):
    """The Model a config names: loaded from `model.path` if a checkpoint is there, else trained
    from `model.train` (and saved to `model.path` when given)."""
    from audit.models import Model, train

    m = dict(config.model)
    if "factory" in m:  # the user's own architecture (importing it is the config author's choice)
        from audit.models._retrain import from_config

        _log(f"building the model from the factory {m['factory']} ...", progress)
        settings = {k: v for k, v in dict(m.get("train") or {}).items() if k != "arch"}
        return from_config(m, data, seed=config.seed, train_settings=settings, progress=progress)
    path = m.get("path")
    if path and os.path.isfile(os.path.join(path, "manifest.json")):
        _log(f"loading model from {path}", progress)
        model = Model.load(path)
        check_fit(model, data, path, trainable="train" in m)
        return model
    if "train" not in m:
        where = f"no checkpoint at {path!r} and " if path else ""
        raise AuditInputError(f"{where}the config's 'model' section has no 'train' settings; give "
                              "model.path to a checkpoint or model.train (e.g. {arch: mlp}).")
    settings = dict(m["train"] or {})
    arch = settings.pop("arch", "cnn" if data.kind == "image" else "mlp")
    _log(f"training a {arch} on {data.name} ...", progress)
    model = train(arch, data, seed=config.seed, progress=progress, **settings)
    recorded = dict((model.metadata or {}).get("data") or {})
    # how to load the same data again (the dashboard and error messages read it from the manifest)
    model = model.replace(metadata={**model.metadata, "data": {**recorded, "config": dict(config.data),
                                                               "seed": config.seed}})
    if path and parallel.process_index() == 0:  # one writer when many processes run the audit
        model.save(path)
        _log(f"model saved to {path}", progress)
    return model


def check_fit(model, data, path: str, *, trainable: bool = False) -> None:
    """AuditInputError unless the checkpoint at `path` fits `data`; the message names the
    checkpoint, what its manifest says it was trained on, and how to fix the clash."""
    try:
        model.check_data(data)
    except AuditInputError as exc:
        trained = dict((model.metadata or {}).get("data") or {})
        on = (f"data {trained['name']!r}" if trained.get("name") else "unrecorded data") + (
            f" (config data section {trained['config']})" if trained.get("config") else "")
        detail = f"inputs of shape {tuple(model.input_shape)}, classes {list(model.class_names)}"
        names = trained.get("feature_names") or []
        if names and data.kind == "tabular":
            extra = [n for n in data.feature_names if n not in names]
            lacking = [n for n in names if n not in data.feature_names]
            if extra:
                detail += f"; the data here has inputs the model never saw: {extra[:6]}"
            if lacking:
                detail += f"; the model had inputs the data here lacks: {lacking[:6]}"
        fix = ("delete that folder (the config's model.train then trains and saves a fresh model) "
               "or point model.path at a new folder" if trainable else
               "point model.path at a checkpoint trained on this data")
        raise AuditInputError(f"checkpoint {path!r} does not fit the data {data.name!r}: {exc} "
                              f"It was trained on {on} with {detail}. To fix: load the data the way the "
                              f"model was trained, or {fix}.") from None


def run_config(config: AuditConfig, *, progress: bool = True,
               on_section: Callable[[str, Any], None] | None = None) -> tuple[AuditReport, Any, Any]:
    """Load data and model as the config says, then `run` (`on_section` as there). Returns
    (report, model, data)."""
    stream = load_stream(config)
    data = load_data(config) if stream is None else stream.sample
    check_against_data(config, data)  # before the model is trained or any analyzer runs
    model = load_model(config, data, progress=progress)
    return run(model, data, config, progress=progress, stream=stream, on_section=on_section), model, data
