"""`AuditReport`: the sections, findings and metadata of one audit; JSON in, JSON out.

Large numeric arrays go to a sidecar `.npz` next to the JSON (loaded with allow_pickle=False),
so the JSON stays readable. Files are written atomically: a complete file or none.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
from typing import Any, Mapping

import numpy as np

from audit.errors import AuditInputError
from audit.pipeline._registry import ANALYZERS, Registry
from audit import results
from audit.results import Finding

SCHEMA = 1
_SIDECAR_MIN = 1024  # numeric lists with at least this many numbers go to the sidecar


@dataclasses.dataclass(frozen=True)
class Section:
    """One analyzer's outcome: its result, or why it was skipped; and how long it took."""

    name: str
    title: str
    result: Any = None
    skipped: str | None = None
    seconds: float = 0.0
    failed: str | None = None  # why the analyzer stopped with an error (the report is then incomplete)

    def metrics(self) -> dict[str, float]:
        return {} if self.result is None else dict(self.result.metrics())

    def findings(self) -> tuple[Finding, ...]:
        return () if self.result is None else tuple(self.result.findings)


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """An audit's result: `passed` gates a release; `findings` say why."""

    name: str
    sections: Mapping[str, Section]
    findings: tuple[Finding, ...]
    metadata: Mapping[str, Any]

    @property
    def passed(self) -> bool:
        return not self.incomplete and not any(f.status == "fail" for f in self.findings)

    @property
    def incomplete(self) -> bool:
        """True when an analyzer failed mid-audit: the other sections are kept, the verdict is fail."""
        return any(s.failed for s in self.sections.values())

    @property
    def verdict(self) -> str:
        if not self.passed:
            return "fail"
        return "warn" if any(f.status == "warn" for f in self.findings) else "pass"

    @property
    def shap(self):
        """The explain section's SHAP values as a shap.Explanation, ready for shap.plots.*
        (`shap.plots.beeswarm(report.shap)`, `shap.plots.waterfall(report.shap[0])`); None when
        the audit computed none."""
        section = self.sections.get("explain")
        result = getattr(section.result, "shap", None) if section is not None else None
        return None if result is None else result.to_explanation()

    def metrics(self) -> dict[str, float]:
        """Every section's metrics, named "section.metric"."""
        return {f"{name}.{key}": value for name, section in self.sections.items()
                for key, value in section.metrics().items()}

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "kind": "flax-audit-report", "name": self.name,
                "passed": self.passed, "verdict": self.verdict, "incomplete": self.incomplete,
                "findings": [f.to_dict() for f in self.findings],
                "sections": {name: {"title": s.title, "skipped": s.skipped, "seconds": s.seconds, "failed": s.failed,
                                    "result": None if s.result is None else s.result.to_dict()}
                             for name, s in self.sections.items()},
                "metadata": dict(self.metadata)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, registry: Registry | None = None) -> "AuditReport":
        """Rebuild a report; `registry` (default `ANALYZERS`) maps section names to result classes."""
        registry = ANALYZERS if registry is None else registry
        if not isinstance(d, Mapping) or d.get("kind") != "flax-audit-report":
            raise AuditInputError("this JSON is not a flax-audit report (no 'kind': 'flax-audit-report').")
        if d.get("schema") != SCHEMA:
            raise AuditInputError(f"report schema {d.get('schema')!r} is not supported; this flax-audit "
                                  f"reads schema {SCHEMA}. Re-run the audit with this version.")
        sections = {}
        for name, s in d["sections"].items():
            result = None
            if s.get("result") is not None:
                if name not in registry:
                    raise AuditInputError(f"report section {name!r} is unknown to this flax-audit.")
                result = registry[name].result.from_dict(s["result"])
            sections[name] = Section(name=name, title=s["title"], result=result, skipped=s.get("skipped"),
                                     seconds=float(s.get("seconds", 0.0)), failed=s.get("failed"))
        return cls(name=d["name"], sections=sections,
                   findings=tuple(Finding.from_dict(f) for f in d["findings"]), metadata=d.get("metadata", {}))

    def to_json(self, path: str | os.PathLike, *, single_file: bool = False) -> str:
        """Write the report as JSON (plus `<stem>.arrays.npz` when it has large arrays).

        `single_file=True` keeps every array inline: one larger, self-contained file to share,
        which `load` reads the same way."""
        path = os.fspath(path)
        arrays: dict[str, np.ndarray] = {}
        document = results.to_jsonable(self.to_dict())
        if not single_file:
            document = _extract_arrays(document, arrays)
        sidecar = os.path.splitext(path)[0] + ".arrays.npz"
        if arrays:
            document["sidecar"] = os.path.basename(sidecar)
        text = json.dumps(document, indent=1, allow_nan=False).encode()  # fails before any write
        if arrays:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **arrays)
            write_atomic(sidecar, buffer.getvalue())
        elif os.path.exists(sidecar):
            os.remove(sidecar)
        write_atomic(path, text)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, registry: Registry | None = None) -> "AuditReport":
        """Read a report written by `to_json` (with its sidecar, if any); `registry` as in `from_dict`."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise AuditInputError(f"report {path!r} does not exist.")
        try:
            with open(path, "rb") as f:
                document = json.loads(f.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AuditInputError(f"report {path!r} is not valid JSON ({exc}).") from None
        if isinstance(document, dict) and document.get("sidecar"):
            folder = os.path.dirname(path) or "."
            name = document["sidecar"]
            if not isinstance(name, str) or os.path.basename(name) != name:
                raise AuditInputError(f"report {path!r} names the array file {name!r}; it must be a plain "
                                      "file name next to the report.")
            sidecar = os.path.join(folder, name)
            real = os.path.realpath(sidecar)
            if os.path.dirname(real) != os.path.realpath(folder):
                raise AuditInputError(f"report {path!r}: its array file {name!r} is a link that leaves the "
                                      "report's folder; refusing to open it.")
            try:
                with np.load(sidecar, allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
            except (OSError, ValueError) as exc:
                raise AuditInputError(f"report {path!r}: cannot read its array file {sidecar!r} ({exc}).") from None
            document = _restore_arrays(document, arrays)
        try:
            return cls.from_dict(document, registry=registry)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, AuditInputError):
                raise
            raise AuditInputError(f"report {path!r} is malformed ({type(exc).__name__}: {exc}).") from None

    def to_html(self, path: str | os.PathLike, *, renderer=None) -> str:
        """Write the self-contained HTML report (no network requests, everything escaped);
        `renderer`: the `audit.render.html.FigureRenderer` that drew the figures while the audit ran."""
        from audit.render.html import render_report

        path = os.fspath(path)
        write_atomic(path, render_report(self, renderer=renderer).encode())
        return path


def write_atomic(path: str, payload: bytes) -> None:
    """Write bytes to `path` via a temporary file and rename: never a half-written file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _numeric_list(value: Any) -> np.ndarray | None:
    """A large rectangular numeric list as an array (None -> NaN), else None."""
    if not isinstance(value, list) or len(value) < 2:
        return None
    try:
        arr = np.asarray(value)
        if arr.dtype == object:
            arr = results.array(value)
    except (TypeError, ValueError):
        return None
    return arr if arr.dtype.kind in "iuf" and arr.size >= _SIDECAR_MIN else None


def _extract_arrays(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        return {k: _extract_arrays(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        arr = _numeric_list(value)
        if arr is not None:
            key = f"a{len(arrays)}"
            arrays[key] = arr
            return {"$array": key}
        return [_extract_arrays(v, arrays) for v in value]
    return value


def _restore_arrays(value: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$array"}:
            if value["$array"] not in arrays:
                raise AuditInputError(f"report array {value['$array']!r} is missing from its sidecar file.")
            return results.to_jsonable(arrays[value["$array"]])
        return {k: _restore_arrays(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_arrays(v, arrays) for v in value]
    return value
