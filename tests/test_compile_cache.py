"""`audit run` / `audit demo` keep compiled programs in JAX's persistent cache (checked in a child
process: the setting is global to a process)."""

import json
import subprocess
import sys

SCRIPT = r"""
import json, os, sys, jax, jax.numpy as jnp
from audit import cli
from audit.errors import AuditInputError
out = {"off": cli._compile_cache("off"), "env_off": (os.environ.__setitem__("AUDIT_COMPILE_CACHE", "off"),
       cli._compile_cache(None))[1]}
os.environ.pop("AUDIT_COMPILE_CACHE")
try:
    cli._compile_cache(os.path.join(sys.argv[2], "plain-file", "x"))
except AuditInputError as exc:
    out["error"] = str(exc)
out["on"] = cli._compile_cache(sys.argv[1])
out["min_time"] = jax.config.jax_persistent_cache_min_compile_time_secs
out["again"] = cli._compile_cache(sys.argv[2])  # once set, the folder in use stays
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # any machine speed: cache this one
f = jax.jit(lambda x: jnp.sum(jnp.stack([jnp.sin(x * i) @ x for i in range(4)])))
f(jnp.ones((32, 32))).block_until_ready()
out["entries"] = len(os.listdir(sys.argv[1]))
print(json.dumps(out))
"""


def test_compile_cache_folder_switch_and_errors(tmp_path):
    (tmp_path / "plain-file").write_text("not a folder")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "cache"), str(tmp_path)],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["off"] is None and out["env_off"] is None
    assert "plain-file" in out["error"] and "--compile-cache" in out["error"]
    assert out["on"] == str(tmp_path / "cache") and out["again"] == out["on"]
    assert out["min_time"] == 0.1
    assert out["entries"] >= 1  # the jitted program was written to the cache
