"""The audit: config and policy, the analyzer registry, `run()`, and the `AuditReport`."""

from audit.pipeline._config import AuditConfig
from audit.pipeline._policy import Rule
from audit.pipeline._registry import ANALYZERS, AnalyzerSpec
from audit.pipeline._report import AuditReport, Section
from audit.pipeline._run import load_data, load_model, run, run_config

__all__ = ["ANALYZERS", "AnalyzerSpec", "AuditConfig", "AuditReport", "Rule", "Section", "load_data",
           "load_model", "run", "run_config"]
