"""Adversarial examples shared by the sections of one audit.

`evaluate` and `certify` (and any caller of `run_attacks`) attack nested seeded samples of the
same rows with the same attacks: robustness at n=200 and certification at n=100 attack the same
first 100 rows of one seeded permutation, at every eps their grids share. `run_attacks` attacks
rows in that permutation order, in fixed-size batches whose random starts come from the batch's
position, and the attacks treat rows independently, so the adversarial example of a row depends
only on (model, attack, settings, eps, seed, batch size, the row's position): a smaller sample's
attack is a prefix of a larger one's. This cache keeps the last results and hands out prefixes,
checked against the rows' own values, so a hit returns exactly what the attack would compute.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from typing import Any, Hashable

import numpy as np

MAX_ENTRIES = 64

_entries: collections.OrderedDict[Hashable, tuple[np.ndarray, np.ndarray, np.ndarray]] = collections.OrderedDict()
_lock = threading.Lock()  # the dashboard calls analyzers from several threads


def model_key(model) -> tuple[Any, ...]:
    """What identifies a model's attack results: its apply function and its weights' digest."""
    return (model.apply, model.fingerprint())


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def lookup(key: Hashable, x: np.ndarray, y: np.ndarray, *, exact: bool = False) -> np.ndarray | None:
    """The adversarial rows stored for `key` whose first len(x) rows were computed on exactly
    `x`, `y` (in the same order; with `exact`, on exactly these rows and no more); None when there
    are none."""
    with _lock:
        entry = _entries.get(key)
        if entry is None:
            return None
        xs, ys, adv = entry
        n = len(x)
        if n > len(xs) or (exact and n != len(xs)) or not (np.array_equal(xs[:n], x) and np.array_equal(ys[:n], y)):
            return None
        _entries.move_to_end(key)
        return adv[:n].copy()


def store(key: Hashable, x: np.ndarray, y: np.ndarray, adv: np.ndarray) -> None:
    """Keep `adv` (computed on `x`, `y`) for `key` unless a longer result is stored already."""
    with _lock:
        old = _entries.get(key)
        if old is not None and len(old[0]) >= len(x):
            return
        _entries[key] = (np.array(x, copy=True), np.array(y, copy=True), np.array(adv, copy=True))
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)


def clear() -> None:
    """Forget every stored result (tests; a long session that wants the memory back)."""
    with _lock:
        _entries.clear()
