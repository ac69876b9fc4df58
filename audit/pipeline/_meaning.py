"""What a pipeline metric means: the `MetricSpec` its analyzer's result class declares.

A report's metrics are named "<section>.<metric>"; the section names a registered analyzer whose
result class lists `METRICS` next to its `metrics()`. Diff, policy and the report read that table,
never a guess from the metric's name.
"""

from __future__ import annotations

from audit.results import MetricSpec, metric_spec


def spec_of(metric: str, registry=None) -> MetricSpec | None:
    """The declared spec of "<section>.<metric>" (None when the analyzer or metric is undeclared);
    `registry` defaults to `audit.pipeline.ANALYZERS`."""
    from audit.pipeline._registry import ANALYZERS

    section, _, name = metric.partition(".")
    analyzer = (ANALYZERS if registry is None else registry).get(section)
    if analyzer is None or not name:
        return None
    return metric_spec(getattr(analyzer.result, "METRICS", ()), name)


def spec_in(report, metric: str) -> MetricSpec | None:
    """The spec of "<section>.<metric>" as the report's own section result declares it (so reports
    made with a custom registry are read right), else as the default registry declares it."""
    section, _, name = metric.partition(".")
    found = getattr(report, "sections", {}).get(section)
    declared = getattr(type(getattr(found, "result", None)), "METRICS", None)
    if declared:
        return metric_spec(declared, name)
    return spec_of(metric)


def is_interval_bound(spec: MetricSpec | None) -> bool:
    """An interval's end ("..._ci_low:<attribute>"), shown in a diff only when asked."""
    return spec is not None and any(t in spec.pattern for t in ("_ci_low", "_ci_high"))
