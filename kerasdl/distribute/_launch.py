"""Starting a job of several processes on this machine: ``launch`` and
``python -m kerasdl.distribute --processes N script.py [args ...]``.

Each process gets the coordinator's address (127.0.0.1 and a free port),
the process count and its id in the variables ``initialize()`` reads, and
its own GPUs through ``CUDA_VISIBLE_DEVICES`` when the machine has GPUs
(``JAX_NUM_CPU_DEVICES`` CPU devices otherwise). NCCL's NVLink multicast
is left off (``NCCL_NVLS_ENABLE=0``) unless the environment sets it. The
processes' output is shown line by line behind ``[id]``; the first process
that fails stops the others.
"""

import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from kerasdl import _validate


class LaunchError(RuntimeError):
    """A process of a launched job failed; the others were stopped.

    Attributes:
        process: int. The first process seen to fail.
        status: int. Its exit status (128 + N when killed by signal N), the
            status ``python -m kerasdl.distribute`` exits with.
    """

    def __init__(self, message, process, status):
        super().__init__(message)
        self.process, self.status = process, status


_CHILD = ("import sys; from kerasdl.distribute import _launch; "
          "_launch._run_function(sys.argv[1])")


DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"


def launch(n_processes, target, args=(), *, devices_per_process=None,
           port=None, timeout=None, env=None, deterministic=False,
           stream=None):
    """Runs ``target`` in ``n_processes`` processes on this machine, as one
    JAX job, and waits for all of them.

    Example (a script ``train.py`` whose ``main()`` calls
    ``kerasdl.distribute.initialize()`` first, then trains inside
    ``data_parallel()``)::

        kerasdl.distribute.launch(2, "train.py", ["--epochs", "3"])
        # or: python -m kerasdl.distribute --processes 2 train.py --epochs 3
        kerasdl.distribute.launch(2, main)   # a function: joined for you

    Args:
        n_processes: int. Processes to start (one per GPU is usual).
        target: str or callable. A script's path (run as ``python
            script args...``; it calls ``initialize()`` itself), or a
            top-level function (of an importable module or of the running
            script), called as ``target(*args)`` after ``initialize()``.
        args: sequence. The script's command-line arguments, or the
            function's arguments (JSON values: numbers, strings, lists,
            dicts).
        devices_per_process: int or None. GPUs per process; defaults to
            the GPUs shared evenly (or 1 CPU device each without GPUs).
        port: int or None. The coordinator's port on 127.0.0.1; defaults
            to a free one.
        timeout: float or None. Seconds the processes wait for each other
            to join (``initialize``'s ``timeout``); defaults to 300.
        env: dict or None. Extra environment variables for every process.
        deterministic: bool. Adds ``--xla_gpu_deterministic_ops=true`` to
            every process's ``XLA_FLAGS``: GPU results then repeat from run
            to run, and a job of N processes gives the weights of one
            process over N GPUs bit for bit (XLA's default GPU kernels
            differ from run to run by more than float rounding after a
            few epochs). Slower kernels; no effect on CPUs.
        stream: file or None. Where the prefixed output goes; defaults to
            ``sys.stdout``.

    Returns:
        list of int: every process's exit status (all 0).

    Raises:
        LaunchError: a process failed (its id and exit status are named);
            the others were stopped.
        ValueError: bad arguments, or more processes than GPUs.
    """
    n = _validate.integer(n_processes, "n_processes", low=1)
    command = _command(target, args)
    base = dict(os.environ)
    base.update({str(k): str(v) for k, v in (env or {}).items()})
    gpus = _visible_gpus(base)
    per = _devices_per_process(n, devices_per_process, gpus)
    port = _free_port() if port is None else _validate.integer(
        port, "port", low=1, high=65535)
    base.setdefault("KERAS_BACKEND", "jax")
    base.setdefault("NCCL_NVLS_ENABLE", "0")
    base.update({
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": str(n),
        "KERASDL_DEVICES_PER_PROCESS": str(per),
        "PYTHONUNBUFFERED": "1",
    })
    if deterministic:
        base["XLA_FLAGS"] = with_flag(base.get("XLA_FLAGS", ""),
                                      DETERMINISTIC_FLAG)
    if timeout is not None:
        base["KERASDL_JOIN_TIMEOUT"] = str(
            _validate.positive(timeout, "timeout"))
    return _run(n, command, base, per, gpus, stream or sys.stdout)


def with_flag(flags, flag):
    """``flags`` (an ``XLA_FLAGS`` value) with ``flag`` added once.

    >>> with_flag("--xla_a=1", "--xla_b=true")
    '--xla_a=1 --xla_b=true'
    >>> with_flag("--xla_b=true", "--xla_b=true")
    '--xla_b=true'
    """
    parts = flags.split()
    return " ".join(parts if flag in parts else parts + [flag])


def _command(target, args):
    if isinstance(target, (str, os.PathLike)):
        path = os.fspath(target)
        if not os.path.isfile(path):
            raise ValueError(
                f"launch: the script {path!r} does not exist. Pass the path "
                f"of a Python file, or a function.")
        return [sys.executable, path] + [str(a) for a in args]
    if not callable(target):
        raise TypeError(f"launch: `target` must be a script path or a "
                        f"function. Received: target={target!r}.")
    qualname = getattr(target, "__qualname__", "")
    if "<" in qualname or not qualname:
        raise ValueError(
            f"launch: {target!r} is not a top-level function the processes "
            f"can import (lambdas and nested functions cannot be found "
            f"again). Define it at the top level of a module or script.")
    module = target.__module__
    main_file = getattr(sys.modules.get(module), "__file__", None)
    spec = {"module": module, "qualname": qualname, "file": main_file,
            "args": list(args)}
    try:
        encoded = json.dumps(spec)
    except TypeError as e:
        raise TypeError(f"launch: the function's arguments travel as JSON "
                        f"({e}). Pass numbers, strings, lists or dicts, or "
                        f"read larger inputs from files.") from None
    return [sys.executable, "-c", _CHILD, encoded]


def _run_function(encoded):
    """In a launched process: joins the job and calls the function."""
    import runpy

    from kerasdl.distribute import _processes

    spec = json.loads(encoded)
    if spec["module"] == "__main__":
        if not spec["file"]:
            raise ValueError("launch: the function lives in an interactive "
                             "session; put it in a file.")
        sys.path.insert(0, os.path.dirname(os.path.abspath(spec["file"])))
        namespace = runpy.run_path(spec["file"], run_name="__kerasdl_job__")
        fn = namespace[spec["qualname"].split(".")[0]]
    else:
        if spec["file"]:
            root = os.path.dirname(os.path.abspath(spec["file"]))
            for _ in spec["module"].split(".")[1:]:
                root = os.path.dirname(root)
            sys.path.insert(0, root)
        fn = importlib.import_module(spec["module"])
        for part in spec["qualname"].split("."):
            fn = getattr(fn, part)
    _processes.initialize()
    fn(*spec["args"])


def _visible_gpus(env):
    """GPU ids the job may hand out: ``CUDA_VISIBLE_DEVICES`` when set,
    else those ``nvidia-smi -L`` lists, else none."""
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip()
                and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(
        l for l in out.splitlines() if l.startswith("GPU "))]


def _devices_per_process(n, per, gpus):
    if per is not None:
        per = _validate.integer(per, "devices_per_process", low=1)
    if not gpus:
        return per or 1
    per = per or len(gpus) // n
    if per < 1 or per * n > len(gpus):
        raise ValueError(
            f"launch: {n} processes x {per or 1} GPU(s) need "
            f"{n * (per or 1)} GPUs; {len(gpus)} are visible "
            f"({', '.join(gpus)}). Start at most {len(gpus)} processes, or "
            f"fewer GPUs each.")
    return per


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(n, command, base, per, gpus, stream):
    lock = threading.Lock()
    children, readers = [], []
    try:
        for i in range(n):
            env = dict(base, KERAS_DISTRIBUTION_PROCESS_ID=str(i))
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = ",".join(
                    gpus[i * per:(i + 1) * per])
            else:
                env["JAX_NUM_CPU_DEVICES"] = str(per)
            child = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True)
            children.append(child)
            reader = threading.Thread(
                target=_relay, args=(child.stdout, f"[{i}] ", stream, lock),
                daemon=True)
            reader.start()
            readers.append(reader)
        failed = _wait(children)
    except BaseException:
        _stop(children)
        raise
    if failed is not None:
        _stop(children)
    for reader in readers:
        reader.join(timeout=10)
    if failed is None:
        return [0] * n
    i, code = failed
    status = code if code > 0 else 128 - code
    how = (f"exit status {code}" if code > 0
           else f"signal {-code} ({_signal_name(-code)})")
    if code == 124:
        how += ": it could not join the job in time"
    raise LaunchError(
        f"process {i} of {n} failed ({how}); the other processes were "
        f"stopped. Its output above, prefixed [{i}], says why.", i, status)


def _relay(pipe, prefix, stream, lock):
    for raw in iter(pipe.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        with lock:
            stream.write(prefix + line + "\n")
            stream.flush()
    pipe.close()


def _wait(children):
    """Waits until all succeed (None) or one fails: (its id, status)."""
    while True:
        running = False
        for i, child in enumerate(children):
            code = child.poll()
            if code is None:
                running = True
            elif code != 0:
                return i, code
        if not running:
            return None
        time.sleep(0.05)


def _stop(children, grace=5.0):
    alive = [c for c in children if c.poll() is None]
    for child in alive:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in alive:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait()


def _signal_group(child, sig):
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"
