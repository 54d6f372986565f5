"""The one place where kerasdl talks to TensorFlow, JAX or PyTorch directly,
split by concern:

- ``devices``: the backend's name, the accelerator, data parallelism
  (devices, replicas, engines, variable scope);
- ``engine``: compiled inference, host <-> device copies, an epoch of
  training as one JAX program;
- ``rng``: the global random generators ``fit`` draws from.

Everything else in the package uses ``keras.ops`` and calls the helpers as
``_backend.<name>``; every helper is importable from here. Each has a test
on every backend (tests/test_precision_and_backend.py,
tests/test_features.py; data parallelism: tests/test_distribute.py).
"""

from kerasdl._backend.devices import name  # noqa: F401
from kerasdl._backend.devices import accelerator  # noqa: F401
from kerasdl._backend.devices import _parse_cc  # noqa: F401
from kerasdl._backend.devices import variable_scope  # noqa: F401
from kerasdl._backend.devices import replica_count  # noqa: F401
from kerasdl._backend.devices import local_devices  # noqa: F401
from kerasdl._backend.devices import data_parallel_engine  # noqa: F401
from kerasdl._backend.devices import multi_worker_strategy  # noqa: F401
from kerasdl._backend.devices import simulate_cpu_devices  # noqa: F401
from kerasdl._backend.devices import sum_over_replicas  # noqa: F401
from kerasdl._backend.engine import synchronize  # noqa: F401
from kerasdl._backend.engine import compiled_inference  # noqa: F401
from kerasdl._backend.engine import _jax_inference  # noqa: F401
from kerasdl._backend.engine import _jax_placement  # noqa: F401
from kerasdl._backend.engine import _jax_rows  # noqa: F401
from kerasdl._backend.engine import _tf_inference  # noqa: F401
from kerasdl._backend.engine import copies  # noqa: F401
from kerasdl._backend.engine import to_device  # noqa: F401
from kerasdl._backend.engine import start_fetch  # noqa: F401
from kerasdl._backend.engine import to_host  # noqa: F401
from kerasdl._backend.engine import epoch_program  # noqa: F401
from kerasdl._backend.rng import global_rng_state  # noqa: F401
from kerasdl._backend.rng import set_global_rng_state  # noqa: F401


def __getattr__(attr):
    # ``fit_on_device`` moved to the recommenders that use it.
    if attr == "fit_on_device":
        from kerasdl.collab.on_device import fit_on_device

        return fit_on_device
    raise AttributeError(f"module 'kerasdl._backend' has no attribute "
                         f"{attr!r}")
