"""Installed versions of the libraries a result depends on, for manifests and report metadata."""

from __future__ import annotations

import platform
from importlib import metadata


def library_versions(names: tuple[str, ...]) -> dict[str, str]:
    """{"python": ..., name: version or "not installed"} for each distribution name."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
