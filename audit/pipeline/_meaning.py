"""What a pipeline metric means: the `MetricSpec` its analyzer's result class declares.

A report's metrics are named "<section>.<metric>"; the section names a registered analyzer whose
result class lists `METRICS` next to its `metrics()`. Diff, policy and the report read that table,
never a guess from the metric's name.
"""

from __future__ import annotations

from audit.results import MetricSpec, metric_spec


def spec_of(metric: str) -> MetricSpec | None:
    """The declared spec of "<section>.<metric>" (None when the analyzer or metric is undeclared)."""
    from audit.pipeline._registry import ANALYZERS

    section, _, name = metric.partition(".")
    analyzer = ANALYZERS.get(section)
    if analyzer is None or not name:
        return None
    try:
        result = analyzer.load_result()
    except (ImportError, AttributeError):
        return None
    return metric_spec(getattr(result, "METRICS", ()), name)


def is_interval_bound(spec: MetricSpec | None) -> bool:
    """An interval's end ("..._ci_low:<attribute>"), shown in a diff only when asked."""
    return spec is not None and any(t in spec.pattern for t in ("_ci_low", "_ci_high"))
