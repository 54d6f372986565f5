"""Package rules: public API documented, no backend imports outside
kerasdl/_backend/ (and kerasdl/distribute/_jax_job.py), import kerasdl
is light."""

import ast
import pathlib
import subprocess
import sys

import pytest

import kerasdl

PKG = pathlib.Path(kerasdl.__file__).parent
BACKENDS = {"tensorflow", "jax", "jaxlib", "torch"}


@pytest.mark.parametrize("name", kerasdl.__all__)
def test_public_names_have_docstrings(name):
    obj = getattr(kerasdl, name)
    assert obj.__doc__ and len(obj.__doc__.strip()) > 20, name


def test_no_backend_imports_outside_backend_helper():
    offenders = []
    for path in PKG.rglob("*.py"):
        if path.is_relative_to(PKG / "_backend") or \
                path == PKG / "distribute" / "_jax_job.py":
            continue  # the backend helpers (and the multi-process job's)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            else:
                continue
            if any(m.split(".")[0] in BACKENDS for m in mods):
                offenders.append(f"{path.relative_to(PKG)}:{node.lineno}")
    assert not offenders, offenders


def test_import_kerasdl_imports_no_framework():
    code = ("import sys, kerasdl; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_backend_package_keeps_every_helper_name():
    from kerasdl import _backend

    names = {"name", "accelerator", "variable_scope", "replica_count",
             "local_devices", "data_parallel_engine",
             "multi_worker_strategy", "simulate_cpu_devices",
             "sum_over_replicas", "synchronize", "compiled_inference",
             "to_device", "start_fetch", "to_host", "global_rng_state",
             "set_global_rng_state", "epoch_program", "_parse_cc",
             "_jax_inference", "_jax_placement", "_jax_rows",
             "_tf_inference"}
    assert all(callable(getattr(_backend, n)) for n in names)
    from kerasdl.collab.on_device import fit_on_device

    assert _backend.fit_on_device is fit_on_device  # moved, still found


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kerasdl.nope  # noqa: B018
