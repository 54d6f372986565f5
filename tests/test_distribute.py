"""kerasdl.distribute: data parallelism on Keras' engines.

The multi-device checks run tests/distribute_worker.py in a fresh process
whose CPU is split into 4 simulated devices (the backend fixes its devices
when first used, so this process cannot); it does the same work on one
device and data-parallel, and reports the differences judged here.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl import distribute

from conftest import ROOT

TOL = 1e-5  # float32 sums taken in another order


@pytest.fixture(scope="module")
def report(backend):
    if backend == "torch":
        pytest.skip("Keras has no data-parallel engine for torch "
                    "(test_torch_is_refused checks the error)")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "distribute_worker.py")],
        capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in done.stdout.splitlines()
             if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("REPORT "):])


def test_four_simulated_devices(report):
    assert report["num_replicas"] == 4
    assert report["active_replicas"] == 4
    assert len(set(report["devices"])) == 4


def test_one_epoch_matches_one_device(report):
    # the same global batches: the weights one device reaches
    assert report["fit"] <= TOL * report["fit_scale"]


def test_one_cycle_same_rate_on_every_replica(report):
    assert report["one_cycle"] <= TOL * report["one_cycle_scale"]
    # every variable (weights, optimizer state, the learning rate) has a
    # copy on each device, and the copies are equal
    assert report["fewest_copies"] == 4
    assert report["replica_spread"] == 0.0


def test_lr_find_restores_every_replica(report):
    assert report["lr_find_restore"] == 0.0
    assert report["lr_find_restore_single"] == 0.0
    # the sweep's losses at small rates are the single device's; higher up
    # the weights' rounding differences grow with the rate
    assert report["lr_find_losses"] <= 1e-3 * max(
        1.0, report["lr_find_losses_scale"])


def test_lr_find_stops_once_for_all(report):
    one, many = report["stopped_at"]
    assert one[0] < 60 and one[1]  # it diverged and said why
    assert many == one


def test_gradient_statistic_summed_over_replicas(report):
    one, many = (report["annealing_logs_single"],
                 report["annealing_logs_parallel"])
    # the statistic of the gradient summed over the replicas: one
    # device's value, not a quarter of it, nor one replica's
    np.testing.assert_allclose(many["grad_sq_sum"], one["grad_sq_sum"],
                               rtol=1e-5)
    # the same decisions, taken once for all replicas
    assert many["lr_annealed"] == one["lr_annealed"]
    assert sum(one["lr_annealed"]) >= 1
    assert many["learning_rate"] == one["learning_rate"]
    assert report["annealing_weights"] <= 1e-4


def test_pseudo_label_rounds_under_data_parallel(report):
    # the same pseudo-labels, and the same weights although each replica
    # gets 6 labelled + 2 pseudo rows of every batch (rows reordered)
    assert report["pseudo_rows"][0] == report["pseudo_rows"][1] == 192
    assert report["pseudo_weights"] <= 1e-4


def test_precompute_split_over_devices_writes_the_same_file(report):
    # 70 images in chunks of 128 rows: one padded chunk split over 4
    assert report["features_shape"] == [70, 8, 8, 4]
    assert report["features"] <= TOL * report["features_scale"]


def test_single_device_here(backend):
    if backend == "torch":
        pytest.skip("torch is refused")
    dp = kerasdl.data_parallel()
    assert dp.num_replicas == len(dp.devices) >= 1
    assert dp.global_batch_size(16) == 16 * dp.num_replicas
    assert distribute.active_replicas() == 1
    with dp as entered:
        assert entered is dp
        assert distribute.active_replicas() == dp.num_replicas
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile("sgd", "mse")
        model.fit(np.ones((8, 3)), np.zeros((8, 2)), batch_size=4,
                  verbose=0)
    assert distribute.active_replicas() == 1
    if backend == "jax":
        assert keras.distribution.distribution() is None
    assert "DataParallel(" in repr(dp)


def test_bad_devices_are_named(backend):
    if backend == "torch":
        pytest.skip("torch is refused")
    with pytest.raises(ValueError, match="asks for 99 devices"):
        kerasdl.data_parallel(99)
    with pytest.raises(ValueError, match="not among the visible devices"):
        kerasdl.data_parallel(["no-such-device:7"])


def test_simulating_devices_after_start_is_refused(backend):
    if backend == "torch":
        pytest.skip("torch is refused")
    keras.ops.add(1.0, 1.0)  # the backend has started
    with pytest.raises(RuntimeError, match="before"):
        distribute.simulate_cpu_devices(3)


def test_torch_is_refused(backend):
    if backend != "torch":
        pytest.skip("checks the torch backend's error")
    with pytest.raises(ValueError, match="no data-parallel engine"):
        kerasdl.data_parallel()


def test_multi_process_helpers_name_the_backend(backend):
    if backend == "jax":
        pytest.skip("a JAX job of several processes is not started here")
    with pytest.raises(ValueError, match="multi-process JAX"):
        distribute.initialize()
    if backend == "tensorflow":
        with pytest.raises(ValueError, match="takes its devices from TF_CONFIG"):
            kerasdl.data_parallel(2, multi_worker=True)
