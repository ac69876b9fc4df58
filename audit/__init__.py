"""flax-audit: audit JAX/Flax models for explanations, robustness, fairness and imbalance.

The public names below load lazily, so `import audit` stays cheap (JAX loads on first use).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from audit.errors import AuditInputError

__version__ = "0.1.0"

_PUBLIC = {
    "Dataset": "audit.data",
    "Model": "audit.models",
    "train": "audit.models",
    "datasets": "audit.datasets",
    "run": "audit.pipeline",
    "AuditConfig": "audit.pipeline",
    "AuditReport": "audit.pipeline",
}

# Public subpackages, imported on first attribute access (`audit.fairness.assess(...)` works
# right after `import audit`).
_SUBPACKAGES = ("data", "datasets", "explain", "fairness", "imbalance", "missing", "models", "pipeline",
                "render", "results", "robustness")

__all__ = ["AuditInputError", *_PUBLIC, *(s for s in _SUBPACKAGES if s not in _PUBLIC)]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        module = importlib.import_module(_PUBLIC[name])
        return module if module.__name__ == f"audit.{name}" else getattr(module, name)
    if name in _SUBPACKAGES or (not name.startswith("_") and importlib.util.find_spec(f"audit.{name}")):
        return importlib.import_module(f"audit.{name}")  # any public subpackage, also ones added later
    raise AttributeError(f"module 'audit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
