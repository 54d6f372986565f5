"""A job of several processes: the launcher, the process helpers, and a
two-process JAX job on CPU that must match one process over two devices
(tests/multiprocess_worker.py does the work; this file judges it)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kerasdl import distribute
from kerasdl.distribute import _processes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "multiprocess_worker.py")


def script(tmp_path, body, name="job.py"):
    """A script that can import kerasdl from this checkout."""
    path = tmp_path / name
    path.write_text(f"import os, sys\nsys.path.insert(0, {ROOT!r})\n"
                    + textwrap.dedent(body))
    return str(path)


class Lines:
    """A stream that keeps what the launcher relays."""

    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.extend(t for t in text.splitlines() if t)

    def flush(self):
        pass

    def of(self, process):
        prefix = f"[{process}] "
        return [t[len(prefix):] for t in self.lines if t.startswith(prefix)]


def results(lines, process):
    found = [json.loads(t[len("RESULT "):]) for t in lines.of(process)
             if t.startswith("RESULT ")]
    assert len(found) == 1, "\n".join(lines.lines[-40:])
    return found[0]


def jax_only(backend):
    if backend != "jax":
        pytest.skip("a job of several processes runs under JAX only "
                    "(KERAS_BACKEND=jax)")


# -- the launcher (no backend in the processes) -----------------------------

def test_launch_sets_each_process_and_stops_all_at_the_first_failure(
        tmp_path):
    path = script(tmp_path, """
        import time
        me = os.environ["KERAS_DISTRIBUTION_PROCESS_ID"]
        print("ENV", me, os.environ["KERAS_DISTRIBUTION_NUM_PROCESSES"],
              os.environ["KERAS_DISTRIBUTION_JOB_ADDRESSES"],
              os.environ["NCCL_NVLS_ENABLE"], sys.argv[1:], flush=True)
        if me == "1":
            sys.exit(3)
        time.sleep(120)
        print("FINISHED", flush=True)
    """)
    out = Lines()
    env = {"CUDA_VISIBLE_DEVICES": ""}  # no GPUs: one CPU device each
    with pytest.raises(distribute.LaunchError,
                       match=r"process 1 of 2 failed \(exit status 3\)") as e:
        distribute.launch(2, path, ["--flag", 7], env=env, stream=out,
                          port=45123)
    assert (e.value.process, e.value.status) == (1, 3)
    for i in (0, 1):
        assert out.of(i)[0] == (f"ENV {i} 2 127.0.0.1:45123 0 "
                                f"['--flag', '7']")
    # launch returned, so process 0 was stopped before it finished
    assert not any("FINISHED" in t for t in out.lines)


def test_command_line_exit_status_is_the_failed_process(tmp_path):
    path = script(tmp_path, """
        sys.exit(5 if os.environ["KERAS_DISTRIBUTION_PROCESS_ID"] == "0"
                 else 0)
    """)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get(
                   "PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-m", "kerasdl.distribute", "--processes", "2",
         path], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 5, done.stderr
    assert "process 0 of 2 failed (exit status 5)" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "kerasdl.distribute", "--processes", "2",
         str(tmp_path / "missing.py")], capture_output=True, text=True,
        env=env, timeout=120)
    assert done.returncode == 2
    assert "does not exist" in done.stderr.strip().splitlines()[-1]


def test_deterministic_adds_the_xla_flag_to_every_process(tmp_path):
    path = script(tmp_path, """
        print("FLAGS", os.environ.get("XLA_FLAGS"), flush=True)
    """)
    out = Lines()
    distribute.launch(2, path, env={"CUDA_VISIBLE_DEVICES": "",
                                    "XLA_FLAGS": "--xla_dump_to=/nowhere"},
                      deterministic=True, stream=out)
    for i in (0, 1):
        assert out.of(i) == ["FLAGS --xla_dump_to=/nowhere "
                             "--xla_gpu_deterministic_ops=true"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", XLA_FLAGS="",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get(
                   "PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-m", "kerasdl.distribute", "--processes", "2",
         "--deterministic", path], capture_output=True, text=True,
        env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(
        "FLAGS --xla_gpu_deterministic_ops=true") == 2, done.stdout


def test_launch_refuses_bad_targets(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        distribute.launch(2, str(tmp_path / "missing.py"))
    with pytest.raises(ValueError, match="not a top-level function"):
        distribute.launch(2, lambda: None)
    with pytest.raises(TypeError, match="travel as JSON"):
        distribute.launch(2, print, [object()])
    with pytest.raises(ValueError, match="n_processes"):
        distribute.launch(0, print)
    with pytest.raises(ValueError, match="need 6 GPUs; 2 are visible"):
        distribute.launch(3, print, devices_per_process=2,
                          env={"CUDA_VISIBLE_DEVICES": "0,1"})


def test_the_launcher_starts_without_keras():
    code = ("import sys, kerasdl.distribute.__main__, kerasdl.distribute as d;"
            " d.launch; print(sorted(m for m in ('keras', 'jax', "
            "'tensorflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr[-2000:]


# -- the process helpers, in one process ------------------------------------

def test_alone_the_process_is_the_writer(backend):
    assert distribute.process_index() == 0
    assert distribute.process_count() == 1
    assert distribute.is_writer()
    distribute.barrier("nothing to wait for")  # returns at once
    x = np.arange(10)
    assert distribute.process_batches(x, 4) == (x, 4)
    np.testing.assert_array_equal(distribute.gather(x[:3]), x[:3])


def test_docstring_examples():
    import doctest

    from kerasdl.distribute import _batches

    for module in (_processes, _batches):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_tensorflow_workers_are_numbered_from_tf_config(backend,
                                                        monkeypatch):
    if backend != "tensorflow":
        pytest.skip("TF_CONFIG numbers TensorFlow workers")
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]},
        "task": {"type": "worker", "index": 1}}))
    assert distribute.process_index() == 2
    assert distribute.process_count() == 3
    assert not distribute.is_writer()
    with pytest.raises(ValueError, match="needs KERAS_BACKEND=jax"):
        distribute.barrier("saved")


@pytest.mark.parametrize("rows", [96, 100])
def test_process_batches_cut_every_batch_between_processes(rows,
                                                           monkeypatch):
    x = np.arange(rows * 2).reshape(rows, 2)
    y = np.arange(rows)
    monkeypatch.setattr(_processes, "process_count", lambda: 4)
    parts = []
    for me in range(4):
        monkeypatch.setattr(_processes, "process_index", lambda: me)
        (px, py), per = distribute.process_batches((x, y), 32)
        assert per == 8
        np.testing.assert_array_equal(px[:, 0], py * 2)
        parts.append(py)
    # batch b of the job is process 0's rows of b, then process 1's ...
    starts = list(range(0, rows, 32))
    for b, start in enumerate(starts):
        size = min(32, rows - start) // 4
        job_batch = np.concatenate([p[b * 8:b * 8 + size] for p in parts])
        np.testing.assert_array_equal(job_batch,
                                      y[start:start + 4 * size])


def test_process_batches_refuse_uneven_splits(monkeypatch):
    monkeypatch.setattr(_processes, "process_count", lambda: 2)
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="multiple of the 2 processes"):
        distribute.process_batches(x, 5)
    with pytest.raises(ValueError, match="last batch has 3 rows"):
        distribute.process_batches(np.zeros((7, 3)), 4)
    with pytest.raises(ValueError, match="same rows"):
        distribute.process_batches((x, np.zeros(9)), 4)


def test_initialize_checks_its_arguments(backend):
    jax_only(backend)
    with pytest.raises(ValueError, match="process_id"):
        distribute.initialize("127.0.0.1:1", 2, 5)
    with pytest.raises(ValueError, match="needs the coordinator's address"):
        distribute.initialize("127.0.0.1:1", None, 0)


# -- jobs of two JAX processes on CPU ---------------------------------------

def test_a_process_that_cannot_join_says_so(backend, tmp_path):
    jax_only(backend)
    # process 1 never joins: process 0 gives up after 3 s with one line,
    # and the launcher stops process 1
    path = script(tmp_path, """
        import time
        if os.environ["KERAS_DISTRIBUTION_PROCESS_ID"] == "1":
            time.sleep(120)
        from kerasdl import distribute
        distribute.initialize()
    """)
    out = Lines()
    with pytest.raises(distribute.LaunchError,
                       match="process 0 of 2 failed.*join the job") as e:
        distribute.launch(2, path, stream=out, timeout=3,
                          env={"CUDA_VISIBLE_DEVICES": ""})
    assert e.value.status == 124
    said = [t for t in out.of(0) if t.startswith("kerasdl.distribute:")]
    assert len(said) == 1 and "within 3 s" in said[0], out.lines[-20:]


def test_processes_that_disagree_on_devices_are_refused(backend, tmp_path):
    jax_only(backend)
    path = script(tmp_path, """
        if os.environ["KERAS_DISTRIBUTION_PROCESS_ID"] == "1":
            os.environ["JAX_NUM_CPU_DEVICES"] = "2"
        from kerasdl import distribute
        distribute.initialize()
        print("JOINED", flush=True)
    """)
    out = Lines()
    with pytest.raises(distribute.LaunchError, match="failed"):
        distribute.launch(2, path, stream=out,
                          env={"CUDA_VISIBLE_DEVICES": ""})
    text = "\n".join(out.lines)
    assert "disagree on their device count (process 0: 1, process 1: 2)" \
        in text, out.lines[-20:]
    assert "JOINED" not in text


def test_two_processes_match_one_process_over_two_devices(backend,
                                                          tmp_path):
    jax_only(backend)
    env = dict(os.environ, KERAS_BACKEND="jax", CUDA_VISIBLE_DEVICES="")
    env.pop("XLA_FLAGS", None)
    # one process over two simulated devices, beside the job
    reference = subprocess.Popen(
        [sys.executable, WORKER, "reference", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    job = tmp_path / "job"
    job.mkdir()
    out = Lines()
    sys.path.insert(0, os.path.dirname(WORKER))
    try:
        import multiprocess_worker

        # a function of a module: launch joins the job, then calls it
        assert distribute.launch(2, multiprocess_worker.job, [str(job)],
                                 stream=out,
                                 env={"CUDA_VISIBLE_DEVICES": ""}) == [0, 0]
    finally:
        sys.path.remove(os.path.dirname(WORKER))
        stdout, stderr = reference.communicate(timeout=600)
    found = [t for t in stdout.splitlines() if t.startswith("RESULT ")]
    assert reference.returncode == 0 and found, stderr[-3000:]
    one = json.loads(found[0][len("RESULT "):])
    first, second = results(out, 0), results(out, 1)
    assert one["replicas"] == first["replicas"] == second["replicas"] == 2
    assert (first["process"], second["process"]) == (0, 1)
    assert first["rows"] == second["rows"] == one["rows"] // 2

    # the weights of one process over two devices, within float rounding
    w1 = np.asarray(one["weights"])
    for part in (first, second):
        w = np.asarray(part["weights"])
        assert np.max(np.abs(w - w1)) <= 1e-5 * np.max(np.abs(w1))
    assert first["weights"] == second["weights"]  # one job, one model
    # the validation loss is the whole job's: one process's over all rows
    assert first["val_loss"] == second["val_loss"]
    assert abs(first["val_loss"] - one["val_loss"]) <= 1e-5 * one["val_loss"]

    # the LR finder stops at the same step, for the same reason, in both
    # processes (the loss it watches is the job's); each restores its
    # weights
    assert first["lr_find"] == second["lr_find"]
    assert first["lr_find"][0] < 40  # it stopped before num_it
    assert first["lr_find"][1] == "diverged"
    assert first["lr_find_losses"] == second["lr_find_losses"]
    assert first["restored"] == second["restored"] == 0.0

    # only process 0 wrote; the other waited for it and read its files
    assert first["wrote"] == ["model.keras", "report.json"]
    assert second["wrote"] == []
    assert sorted(os.listdir(job)) == ["model.keras", "report.json"]
    assert first["loaded_difference"] == second["loaded_difference"] == 0.0
    report = json.loads((job / "report.json").read_text())
    assert report["weights"] == first["weights"]

    # a barrier only one process reaches ends in a TimeoutError that says
    # how many arrived, and the job goes on
    assert "1 of 2 processes reached it" in first["lonely_barrier"]
    assert "lonely_barrier" not in second

    # gather: process 0's rows, then process 1's, on both
    assert first["gathered"] == second["gathered"]
    labels = np.asarray(first["gathered"])
    assert list(labels[:first["rows"]] % 10) == [0] * first["rows"]
    assert list(labels[first["rows"]:] % 10) == [1] * second["rows"]
