"""Shared test setup: the backend in use and the real data under
../shared/data (tests that need it skip with a reason when it is absent)."""

import gc
import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA = pathlib.Path(
    os.environ.get("KERASDL_SHARED_DATA", ROOT.parent / "shared" / "data"))


def pytest_addoption(parser):
    parser.addoption("--run-large", action="store_true",
                     help="run tests marked large")


# Tests marked ``one_backend`` exercise no backend-specific code of their own
# (command-line errors, file formats, whole pipelines whose parts are tested
# on every backend): `make test` runs them in its TensorFlow pass only, as it
# does the package's docstring examples (--doctest-modules).
ONE_BACKEND = "tensorflow"


def _one_backend(item):
    return ("one_backend" in item.keywords
            or type(item).__name__ == "DoctestItem")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"one_backend: runs under KERAS_BACKEND={ONE_BACKEND} only (set "
        f"KERASDL_ALL_BACKENDS=1 to run it under every backend)")


def pytest_collection_modifyitems(config, items):
    if (keras.backend.backend() != ONE_BACKEND
            and not os.environ.get("KERASDL_ALL_BACKENDS")):
        others = [item for item in items if _one_backend(item)]
        if others:
            config.hook.pytest_deselected(items=others)
            items[:] = [item for item in items if not _one_backend(item)]
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="large test: pass --run-large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    return (f"keras {keras.__version__}, backend {keras.backend.backend()}, "
            f"shared data: {SHARED_DATA if SHARED_DATA.is_dir() else 'absent'}")


@pytest.fixture(scope="session")
def backend():
    """The Keras backend this process runs: tensorflow, jax or torch."""
    return keras.backend.backend()


@pytest.fixture(scope="session")
def shared_data():
    """Returns a function ``shared_data(name)`` -> path of a folder in
    ../shared/data, skipping the test when it is absent."""

    def get(name):
        path = SHARED_DATA / name
        if not path.is_dir():
            pytest.skip(f"real data {name!r} not found at {path} "
                        f"(set KERASDL_SHARED_DATA to its parent folder)")
        return path

    return get


@pytest.fixture(scope="module", autouse=True)
def _settled_heap():
    """A full garbage collection as each test file starts; what is alive
    then (the libraries, the backend, Keras) is set aside from the later
    collections, so that the one in each test's clear_session walks only
    the objects created since (with TensorFlow or JAX loaded, a walk of
    everything takes about half a second a test). What was set aside is
    collected again when the next file starts."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    yield


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with float32 and a cleared Keras session."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()


@pytest.fixture(scope="module")
def generated_movielens(tmp_path_factory):
    """A generated ml-100k style folder (u.data, u.item): 60 users, 40
    items."""
    from kerasdl.collab.sample import generate_ratings

    path = tmp_path_factory.mktemp("ml-gen")
    ratings, titles = generate_ratings(60, 40, density=0.3, seed=2)
    with open(path / "u.data", "w") as f:
        for u, i, r, t in ratings.itertuples(index=False):
            f.write(f"{u}\t{i}\t{int(r)}\t{t}\n")
    with open(path / "u.item", "w", encoding="latin-1") as f:
        for i, title in titles.items():
            f.write(f"{i}|{title}|01-Jan-1995||http://x|0\n")
    return path
