"""Reading the user's checkpoints into an architecture, and writing Orbax checkpoints.

Orbax is the Flax ecosystem's checkpoint library; it does the reading and writing here. This
module only finds the right folder (a CheckpointManager's step, its item), matches the stored
tree to the model's parameters by path (`layers/0/kernel`, `params/Dense_0/kernel`), and checks
every shape and dtype, naming the parameter that differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from typing import Any

import jax
import numpy as np

from audit.errors import AuditInputError

_ORBAX_MARKERS = ("_CHECKPOINT_METADATA", "_METADATA", "manifest.ocdbt", "checkpoint")
_RNG_LEAVES = ("count", "key")  # NNX RNG stream state a user may have saved with the weights


def _segment(key) -> str:
    for attribute in ("key", "idx", "name"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def flat_paths(tree: Any) -> dict[tuple[str, ...], Any]:
    """{path segments: leaf}; an NNX Variable's trailing `value` is dropped, so NNX state, its pure
    dict and an Orbax-restored dict all give the same paths."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        segments = tuple(_segment(k) for k in path)
        if len(segments) > 1 and segments[-1] == "value":
            segments = segments[:-1]
        out[segments] = leaf
    return out


def _is_orbax_dir(path: str) -> bool:
    return os.path.isdir(path) and any(os.path.exists(os.path.join(path, m)) for m in _ORBAX_MARKERS)


def _steps(path: str) -> list[int]:
    return sorted(int(d) for d in os.listdir(path) if d.isdigit() and os.path.isdir(os.path.join(path, d)))


def orbax_item(path: str, *, step: int | None = None) -> str:
    """The directory Orbax restores from: `path` itself (a Standard/PyTree checkpoint), or for a
    CheckpointManager folder the chosen step (latest unless `step`) and its single item inside."""
    import orbax.checkpoint as ocp

    if not os.path.isdir(path):
        raise AuditInputError(f"Orbax checkpoint {path!r} is not a directory.")
    steps = _steps(path)
    if steps and not os.path.exists(os.path.join(path, "manifest.ocdbt")):
        available = ocp.CheckpointManager(os.path.abspath(path)).all_steps() or steps
        if step is None:
            step = max(available)
        elif step not in available:
            raise AuditInputError(f"checkpoint {path!r} has steps {sorted(available)}; step {step} is not one.")
        path = os.path.join(path, str(step))
        if not _is_orbax_dir(path) or not os.path.exists(os.path.join(path, "manifest.ocdbt")):
            items = sorted(d for d in os.listdir(path) if _is_orbax_dir(os.path.join(path, d)))
            if len(items) != 1:
                raise AuditInputError(f"checkpoint step folder {path!r} holds items {items}; audit reads a "
                                      "step with one item (e.g. 'default'): point checkpoint at that item.")
            path = os.path.join(path, items[0])
    elif step is not None:
        raise AuditInputError(f"step: {step} was given but {path!r} is a single checkpoint, not a "
                              "CheckpointManager folder of steps.")
    if not _is_orbax_dir(path):
        raise AuditInputError(f"{path!r} is not an Orbax checkpoint (no _CHECKPOINT_METADATA or _METADATA).")
    return path


def restore(path: str, *, step: int | None = None) -> Any:
    """The tree stored in an Orbax checkpoint, as numpy arrays (no target needed)."""
    import orbax.checkpoint as ocp

    item = os.path.abspath(orbax_item(path, step=step))
    try:
        with warnings.catch_warnings():  # "sharding info not provided": single-host restore, expected
            warnings.filterwarnings("ignore", message="Sharding info not provided", category=UserWarning)
            tree = ocp.PyTreeCheckpointer().restore(item)
    except Exception as exc:  # orbax raises many types for unreadable folders
        raise AuditInputError(f"Orbax could not read {item!r}: {type(exc).__name__}: {exc}") from None

    def host(leaf):  # NNX RNG stream keys come back as typed key arrays
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(leaf))
        return np.asarray(leaf)

    return jax.tree_util.tree_map(host, tree)


def _select(stored: dict[tuple[str, ...], Any], wanted: set[tuple[str, ...]]) -> dict[tuple[str, ...], Any]:
    """Align stored paths to the model's. Top-level entries the model does not have (a train
    state's `step`, `opt_state`) are ignored; a checkpoint of bare Linen params fills
    `{params: ...}`; a train state's `params` fills an NNX module's state."""
    tops, stored_tops = {p[0] for p in wanted}, {q[0] for q in stored}
    if tops <= stored_tops:
        return {p: v for p, v in stored.items() if p[0] in tops}
    if tops == {"params"}:
        return {("params", *p): v for p, v in stored.items()}
    if "params" in stored_tops and "params" not in tops:
        inner = {p[1:]: v for p, v in stored.items() if p[0] == "params" and len(p) > 1}
        if tops <= {q[0] for q in inner}:
            return {p: v for p, v in inner.items() if p[0] in tops}
    return stored


def fill(template: Any, stored: Any, *, source: str) -> Any:
    """`template`'s tree with every leaf taken from `stored` (matched by path), checking shapes and
    dtypes; missing or extra parameters are errors naming the path."""
    from audit.models._checkpoint import leaf_spec

    leaves, treedef = jax.tree_util.tree_flatten(template)
    paths = list(flat_paths(template))
    if len(paths) != len(leaves):  # pragma: no cover - two leaves with one path cannot happen in a pytree
        raise AssertionError("duplicate parameter paths")
    available = _select(flat_paths(stored), set(paths))
    out = []
    for path, leaf in zip(paths, leaves):
        name = "/".join(path)
        if path not in available:
            near = sorted("/".join(p) for p in available if p[-1:] == path[-1:])[:3]
            raise AuditInputError(f"checkpoint {source!r} has no parameter {name}"
                                  + (f" (it has e.g. {near})" if near else "")
                                  + "; it was saved from a different architecture or options.")
        value = np.asarray(available[path])
        shape, dtype = leaf_spec(leaf)
        if value.shape != shape or value.dtype != dtype:
            raise AuditInputError(f"checkpoint {source!r}: parameter {name} is {value.shape} {value.dtype}, "
                                  f"the model expects {shape} {dtype}.")
        out.append(value)
    extra = sorted("/".join(p) for p in set(available) - set(paths) if p[-1] not in _RNG_LEAVES)
    if extra:
        raise AuditInputError(f"checkpoint {source!r} has parameters the model lacks ({extra[:3]}); it was "
                              "saved from a different architecture or options.")
    return jax.tree_util.tree_unflatten(treedef, out)


def detect(path: str) -> str:
    """'audit', 'orbax' or 'msgpack' from what is at `path`."""
    if os.path.isfile(path):
        return "msgpack"
    if os.path.isfile(os.path.join(path, "manifest.json")):
        return "audit"
    if _is_orbax_dir(path) or (os.path.isdir(path) and _steps(path)):
        return "orbax"
    if not os.path.exists(path):
        raise AuditInputError(f"checkpoint {path!r} does not exist.")
    raise AuditInputError(f"cannot tell the format of checkpoint {path!r}: it is neither an Orbax folder, "
                          "an audit checkpoint (manifest.json) nor a msgpack file; set format:.")


def read_into(path: str, template: Any, *, format: str = "auto", step: int | None = None) -> Any:
    """Parameters shaped like `template`, read from the checkpoint at `path`."""
    from flax import serialization

    kind = detect(path) if format == "auto" else format
    if kind == "orbax":
        return fill(template, restore(path, step=step), source=path)
    if kind == "audit":
        manifest = _checkpoint_manifest(path)
        if manifest["params"].get("format") == "orbax":
            return fill(template, restore(os.path.join(path, manifest["params"]["dir"])), source=path)
        with open(os.path.join(path, manifest["params"].get("file", "params.msgpack")), "rb") as f:
            payload = f.read()
        if hashlib.sha256(payload).hexdigest() != manifest["params"].get("sha256"):
            raise AuditInputError(f"checkpoint {path!r} is corrupt: its parameter file does not match the "
                                  "checksum in manifest.json.")
        return fill(template, _unkeystr(serialization.msgpack_restore(payload)), source=path)
    if kind == "msgpack":
        if not os.path.isfile(path):
            raise AuditInputError(f"msgpack checkpoint {path!r} is not a file.")
        with open(path, "rb") as f:
            try:
                stored = serialization.msgpack_restore(f.read())
            except Exception as exc:  # msgpack raises several unrelated types on bad bytes
                raise AuditInputError(f"cannot decode msgpack checkpoint {path!r} ({exc}).") from None
        return fill(template, stored, source=path)
    raise AuditInputError(f"checkpoint format {kind!r} is not known; use auto, orbax, audit or msgpack.")


def _unkeystr(flat: dict[str, Any]) -> dict[tuple[str, ...], Any]:
    """audit's msgpack stores `keystr` paths ("['layers'][0]['kernel'].value"): back to a nested dict."""
    import re

    nested: dict = {}
    for key, value in flat.items():
        segments = [a or b for a, b in re.findall(r"\['([^']*)'\]|\[(\d+)\]", key)]
        node = nested
        for s in segments[:-1]:
            node = node.setdefault(s, {})
        node[segments[-1]] = value
    return nested


def _checkpoint_manifest(path: str) -> dict[str, Any]:
    from audit.models import _checkpoint

    return _checkpoint._read_manifest(path)


def load(directory: str | os.PathLike, *, model_cls, like=None, allow_factory: bool = False):
    """`Model.load` for a checkpoint written with format="orbax"."""
    from audit.models import _checkpoint

    directory = os.fspath(directory)
    manifest = _checkpoint._read_manifest(directory)
    template = _checkpoint._template(manifest, like, directory, model_cls, allow_factory)
    params = fill(template.params, restore(os.path.join(directory, manifest["params"]["dir"])), source=directory)
    return template.replace(params=params, input_shape=tuple(manifest["input_shape"]),
                            class_names=tuple(manifest["class_names"]), metadata=manifest.get("metadata") or {},
                            batch_size=int(manifest.get("batch_size", template.batch_size)))


# ---- writing --------------------------------------------------------------------------------
def save(model, directory: str | os.PathLike) -> str:
    """`Model.save(directory, format="orbax")`: an Orbax StandardCheckpointer folder `params/`
    (opens with `ocp.StandardCheckpointer().restore`) plus audit's JSON manifest beside it."""
    import orbax.checkpoint as ocp

    from audit.models import _checkpoint

    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory) and not os.path.isfile(os.path.join(directory, "manifest.json")) and (
            not os.path.isdir(directory) or os.listdir(directory)):
        raise AuditInputError(f"{directory!r} exists and is not a checkpoint; choose a new or empty directory.")
    tree = _nested(model.params)
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".checkpoint-", dir=parent)
    try:
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(os.path.join(staging, "params"), tree)
        checkpointer.wait_until_finished()
        manifest = _checkpoint.manifest_for(model)
        manifest["params"] = {"format": "orbax", "dir": "params",
                              "tree": {"/".join(p): [list(np.shape(v)), str(np.asarray(v).dtype)]
                                       for p, v in flat_paths(tree).items()}}
        with open(os.path.join(staging, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
        if os.path.isdir(directory):
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _nested(params: Any) -> dict:
    """Parameters as a plain nested dict of numpy arrays with string keys (what Orbax stores)."""
    nested: dict = {}
    for path, leaf in flat_paths(params).items():
        node = nested
        for s in path[:-1]:
            node = node.setdefault(s, {})
        node[path[-1]] = np.asarray(leaf)
    return nested


def is_orbax_checkpoint(directory: str) -> bool:
    """Whether `directory` is an audit checkpoint whose parameters are stored with Orbax."""
    path = os.path.join(os.fspath(directory), "manifest.json")
    if not os.path.isfile(path):
        return False
    try:
        with open(path) as f:
            return json.load(f).get("params", {}).get("format") == "orbax"
    except (OSError, ValueError, AttributeError):
        return False
