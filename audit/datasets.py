"""Bundled datasets: `audit.datasets.load(name)`. See `audit.data._credit` for the planted truths."""

from audit.data import _credit as credit
from audit.data._bundled import NAMES, load

__all__ = ["NAMES", "credit", "load"]
