"""Where a report came from: the date, the flax-audit version, and the git commit of the audited code.

The audited code is the user's model factory (its module's folder) or, failing that, the folder of
the audit config; when that folder is inside a git checkout, the report records its commit and
whether tracked files had uncommitted changes. Nothing is recorded when git is missing, the folder
is no checkout, or git does not answer within a few seconds.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from importlib import metadata
from typing import Any


def flax_audit_version() -> str:
    """The installed distribution's version (the package's own `__version__` when not installed)."""
    try:
        return metadata.version("flax-audit")
    except metadata.PackageNotFoundError:  # run from a source tree: the package's own attribute
        return str(getattr(sys.modules.get("audit"), "__version__", "unknown"))


def _git(folder: str, *args: str, timeout: float) -> str | None:
    try:
        done = subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_commit(folder: str, *, timeout: float = 5.0) -> dict[str, Any] | None:
    """{"commit", "dirty", "root"} of the git checkout holding `folder`; None when there is none.

    `dirty` is True when tracked files differ from the commit (untracked files are ignored), None
    when git could not tell."""
    if not os.path.isdir(folder):
        return None
    head = _git(folder, "rev-parse", "--verify", "HEAD", timeout=timeout)
    root = _git(folder, "rev-parse", "--show-toplevel", timeout=timeout)
    if not head or not root:
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no", timeout=timeout)
    return {"commit": head.strip(), "dirty": None if status is None else bool(status.strip()),
            "root": root.strip()}


def _factory_folder(model) -> str | None:
    """The folder of the module that holds the model's factory, when the model was built by one."""
    factory = (getattr(model, "architecture", None) or {}).get("factory")
    if not isinstance(factory, str):
        return None
    module = sys.modules.get(factory.split(":")[0])
    path = getattr(module, "__file__", None)
    return os.path.dirname(os.path.abspath(path)) if path else None


def provenance(*, config_source: str | None = None, model=None) -> dict[str, Any]:
    """{"date", "flax_audit", "code"} for a report's metadata; "code" is absent when the audited code
    (the model factory's folder, else the config file's folder) is not in a git checkout."""
    out: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "flax_audit": flax_audit_version()}
    candidates = [("model factory", _factory_folder(model)),
                  ("audit config", os.path.dirname(os.path.abspath(config_source)) if config_source else None)]
    for what, folder in candidates:
        found = git_commit(folder) if folder else None
        if found is not None:
            out["code"] = {**found, "of": what, "folder": folder}
            break
    return out
