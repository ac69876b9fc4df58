"""Safe checkpoints: msgpack parameters (no pickle) plus a JSON manifest with a checksum.

Layout of a checkpoint directory::

    manifest.json    format, version, architecture, input shape, class names, metadata,
                     library versions, and per-parameter shape/dtype plus the file's sha256
    params.msgpack   {parameter path: array}, written with flax.serialization (raw bytes)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from typing import Any

import jax
import numpy as np
from flax import serialization

from audit._versions import library_versions
from audit.errors import AuditInputError
from audit.models import zoo
from audit.models._build import build

# `Model` in annotations is audit.models.Model: Model calls this module and passes its class in,
# so this module never imports it (no circle, not even for type checkers).

FORMAT, VERSION = "flax-audit-checkpoint", 1
_LIBRARIES = ("jax", "flax", "optax", "numpy", "flax-audit")


def _flat(params: Any) -> dict[str, np.ndarray]:
    return {jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}


def _json_ready(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except TypeError as exc:
        raise AuditInputError(f"model metadata must be JSON-serialisable: {exc}") from None


def manifest_for(model: Model) -> dict[str, Any]:
    """The JSON manifest of a checkpoint of `model`, without its "params" entry (the writer adds it)."""
    return {
        "format": FORMAT, "version": VERSION,
        "architecture": _json_ready(dict(model.architecture)) if model.architecture else None,
        "input_shape": list(model.input_shape), "class_names": list(model.class_names),
        "batch_size": model.batch_size, "metadata": _json_ready(dict(model.metadata)),
        "libraries": library_versions(_LIBRARIES),
    }


def save(model: Model, directory: str | os.PathLike) -> str:
    """Write `model` to `directory` atomically (a complete checkpoint or none). Returns the path."""
    directory = os.fspath(directory)
    flat = _flat(model.params)
    payload = serialization.msgpack_serialize(flat)
    manifest = manifest_for(model)
    manifest["params"] = {"file": "params.msgpack", "sha256": hashlib.sha256(payload).hexdigest(),
                          "tree": {k: [list(v.shape), str(v.dtype)] for k, v in flat.items()}}
    if os.path.exists(directory) and not os.path.isfile(os.path.join(directory, "manifest.json")) and (
            not os.path.isdir(directory) or os.listdir(directory)):
        raise AuditInputError(f"{directory!r} exists and is not a checkpoint; choose a new or empty "
                              "directory (an existing checkpoint there would be replaced).")
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".checkpoint-", dir=parent)
    old = None
    try:
        with open(os.path.join(staging, "params.msgpack"), "wb") as f:
            f.write(payload)
        with open(os.path.join(staging, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
        if os.path.isdir(directory):  # an earlier checkpoint (or an empty folder): swap, then delete
            old = tempfile.mkdtemp(prefix=".checkpoint-old-", dir=parent)
            os.replace(directory, os.path.join(old, "previous"))
        os.replace(staging, directory)
    except BaseException:
        if old is not None and not os.path.exists(directory):
            os.replace(os.path.join(old, "previous"), directory)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return directory


def confined(directory: str, name: Any, *, what: str = "checkpoint") -> str:
    """The path of file `name` inside `directory`, refused (before anything is opened) when it
    is absolute, climbs out with '..', or is a symlink whose target leaves the folder."""
    if not isinstance(name, str) or not name or os.path.isabs(name) or "\x00" in name:
        raise AuditInputError(f"{what} {directory!r} names the file {name!r}; it must be a relative "
                              "name inside the folder.")
    root = os.path.realpath(directory)
    path = os.path.join(directory, name)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root or real == root:
        raise AuditInputError(f"{what} {directory!r} names the file {name!r}, which resolves outside its "
                              "folder; refusing to open it (files a checkpoint or report names must lie "
                              "inside its own folder, not via '..' or symlinks that leave it).")
    return path


def _read_manifest(directory: str) -> dict[str, Any]:
    path = confined(directory, "manifest.json")
    if not os.path.isfile(path):
        raise AuditInputError(f"{directory!r} is not a checkpoint: no manifest.json inside.")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AuditInputError(f"checkpoint manifest {path!r} is corrupt ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise AuditInputError(f"{path!r} is not a flax-audit checkpoint manifest.")
    if manifest.get("version") != VERSION:
        raise AuditInputError(f"checkpoint {directory!r} has format version {manifest.get('version')}; "
                              f"this flax-audit reads version {VERSION}.")
    for key in ("input_shape", "class_names", "params"):
        if key not in manifest:
            raise AuditInputError(f"checkpoint manifest {path!r} lacks {key!r}.")
    return manifest


def leaf_spec(leaf: Any) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of a template's parameter: an array, or the `jax.ShapeDtypeStruct` of a
    template that was traced rather than initialised (`zoo.rebuild(initialise=False)`)."""
    return tuple(np.shape(leaf)), np.dtype(leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype)


def _template(manifest: dict[str, Any], like: Model | None, directory: str, model_cls: type[Model],
              allow_factory: bool = False) -> Model:
    """The Model whose parameters the checkpoint fills: `like`, the zoo architecture, or (only when
    the caller allows importing user code) the factory the manifest records, rebuilt."""
    if like is not None:
        return like
    arch = manifest.get("architecture")
    if not arch:
        raise AuditInputError(f"checkpoint {directory!r} holds a custom model without a recorded architecture; "
                              "load it with Model.load(path, like=model) where `model` has the same structure.")
    if "factory" not in arch:
        return zoo.rebuild(arch, model_cls=model_cls, input_shape=manifest["input_shape"],
                           class_names=manifest["class_names"], initialise=False)
    if not allow_factory:  # the config rule: importing user code is the caller's explicit choice
        raise AuditInputError(
            f"checkpoint {directory!r} holds a model built by the factory {arch['factory']!r}; rebuilding it "
            "imports and runs that code. Pass Model.load(path, allow_factory=True) to allow it (or "
            "like=model, a Model of the same structure), or name it in a config: model: {factory: "
            f"{arch['factory']!r}, checkpoint: {directory!r}}}.")
    return build(arch, model_cls=model_cls, input_shape=tuple(manifest["input_shape"]),
                 class_names=tuple(manifest["class_names"]))


def load(directory: str | os.PathLike, *, model_cls: type[Model], like: Model | None = None,
         allow_factory: bool = False) -> Model:
    """Read a checkpoint written by `save`, verifying its checksum and parameter shapes.

    Zoo models are rebuilt from the manifest, factory models too when `allow_factory` (it imports
    the user's code); otherwise pass `like`, a Model with the same apply function and parameter
    structure (its values are replaced).
    """
    directory = os.fspath(directory)
    manifest = _read_manifest(directory)
    if not isinstance(manifest["params"], dict):
        raise AuditInputError(f"checkpoint manifest in {directory!r}: 'params' must be a mapping.")
    path = confined(directory, manifest["params"].get("file", "params.msgpack"))
    if not os.path.isfile(path):
        raise AuditInputError(f"checkpoint {directory!r} lacks its parameter file {path!r}.")
    with open(path, "rb") as f:
        payload = f.read()
    if hashlib.sha256(payload).hexdigest() != manifest["params"].get("sha256"):
        raise AuditInputError(f"checkpoint {directory!r} is corrupt: {os.path.basename(path)} does not "
                              "match the checksum in manifest.json; re-save or retrain the model.")
    try:
        flat = serialization.msgpack_restore(payload)
    except Exception as exc:  # msgpack raises several unrelated types on bad bytes
        raise AuditInputError(f"checkpoint {directory!r}: cannot decode parameters ({exc}).") from None
    template = _template(manifest, like, directory, model_cls, allow_factory)
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(template.params)
    leaves = []
    for key_path, leaf in leaves_with_path:
        key = jax.tree_util.keystr(key_path)
        if key not in flat:
            raise AuditInputError(f"checkpoint {directory!r} lacks parameter {key}; it was saved from "
                                  "a different architecture.")
        value = np.asarray(flat[key])
        shape, dtype = leaf_spec(leaf)
        if value.shape != shape or value.dtype != dtype:
            raise AuditInputError(f"checkpoint {directory!r}: parameter {key} has shape {value.shape} "
                                  f"{value.dtype}, the model expects {shape} {dtype}.")
        leaves.append(value)
    extra = sorted(set(flat) - {jax.tree_util.keystr(p) for p, _ in leaves_with_path})
    if extra:
        raise AuditInputError(f"checkpoint {directory!r} has parameters {extra[:3]} the model does not "
                              "have; it was saved from a different architecture.")
    return template.replace(params=jax.tree_util.tree_unflatten(treedef, leaves),
                            input_shape=tuple(manifest["input_shape"]),
                            class_names=tuple(manifest["class_names"]),
                            metadata=manifest.get("metadata") or {},
                            batch_size=int(manifest.get("batch_size", template.batch_size)))
