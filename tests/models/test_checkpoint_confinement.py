"""Issue #13: every file a checkpoint or report names stays inside its own folder; '..', absolute
names and symlinks leaving the folder are refused before anything is opened."""

import builtins
import json
import os

import pytest

from audit import AuditInputError, AuditReport
from audit.models import Model


def _edit_manifest(folder, **params):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["params"].update(params)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["../other/params.msgpack", "/etc/passwd", "sub/../../x"])
def test_manifest_params_file_outside_the_folder_is_refused_unopened(tmp_path, linear_model, monkeypatch, name):
    linear_model.save(tmp_path / "other")  # a valid params file elsewhere
    ckpt = tmp_path / "ckpt"
    linear_model.save(ckpt)
    _edit_manifest(ckpt, file=name)
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(os.fspath(f)) or real_open(f, *a, **k))
    with pytest.raises(AuditInputError, match="outside its folder|relative name"):
        Model.load(ckpt, like=linear_model)
    assert all(p.endswith("manifest.json") for p in opened), opened


def test_symlink_leaving_the_folder_is_refused(tmp_path, linear_model):
    linear_model.save(tmp_path / "other")
    ckpt = tmp_path / "ckpt"
    linear_model.save(ckpt)
    os.remove(ckpt / "params.msgpack")
    os.symlink(tmp_path / "other" / "params.msgpack", ckpt / "params.msgpack")
    with pytest.raises(AuditInputError, match="outside its folder"):
        Model.load(ckpt, like=linear_model)
    # a link that stays inside the folder is fine
    os.remove(ckpt / "params.msgpack")
    os.rename(tmp_path / "other" / "params.msgpack", ckpt / "real.msgpack")
    os.symlink(ckpt / "real.msgpack", ckpt / "params.msgpack")
    assert Model.load(ckpt, like=linear_model).input_shape == (5,)


def test_report_sidecar_must_be_next_to_the_report(tmp_path):
    (tmp_path / "r").mkdir()
    for name in ("../evil.npz", "/etc/passwd"):
        (tmp_path / "r" / "report.json").write_text(json.dumps({"kind": "flax-audit-report", "schema": 1,
                                                                 "sidecar": name}))
        with pytest.raises(AuditInputError, match="plain file name"):
            AuditReport.load(tmp_path / "r" / "report.json")
    os.symlink(tmp_path / "evil.npz", tmp_path / "r" / "report.arrays.npz")
    (tmp_path / "r" / "report.json").write_text(json.dumps({"kind": "flax-audit-report", "schema": 1,
                                                             "sidecar": "report.arrays.npz"}))
    with pytest.raises(AuditInputError, match="leaves the report's folder"):
        AuditReport.load(tmp_path / "r" / "report.json")
