"""``python -m kerasdl.distribute --processes N script.py [args ...]``: runs
a script in N processes on this machine as one JAX job (see
``kerasdl.distribute.launch``)."""

import argparse
import signal
import sys

from kerasdl.distribute._launch import LaunchError
from kerasdl.distribute._launch import launch


def main(argv=None):
    """``python -m kerasdl.distribute --processes N script.py [args ...]``."""
    ap = argparse.ArgumentParser(
        prog="python -m kerasdl.distribute",
        description="Run a script in several processes on this machine as "
        "one JAX job (one GPU each by default). The script calls "
        "kerasdl.distribute.initialize() first, then works inside "
        "kerasdl.data_parallel().")
    ap.add_argument("--processes", type=int, required=True,
                    help="processes to start")
    ap.add_argument("--devices-per-process", type=int, default=None,
                    help="GPUs per process (default: the GPUs shared "
                    "evenly; 1 CPU device each without GPUs)")
    ap.add_argument("--port", type=int, default=None,
                    help="coordinator port on 127.0.0.1 (default: a free "
                    "one)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds the processes wait for each other to "
                    "join (default 300)")
    ap.add_argument("--deterministic", action="store_true",
                    help="XLA's deterministic GPU kernels in every process "
                    "(results repeat from run to run; slower)")
    ap.add_argument("script", help="the Python script to run")
    ap.add_argument("args", nargs=argparse.REMAINDER,
                    help="the script's own arguments")
    opts = ap.parse_args(argv)

    def stop(signum, frame):  # the processes are stopped on the way out
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        launch(opts.processes, opts.script, opts.args,
               devices_per_process=opts.devices_per_process, port=opts.port,
               timeout=opts.timeout, deterministic=opts.deterministic)
    except LaunchError as e:
        print(f"kerasdl.distribute: {e}", file=sys.stderr)
        return e.status
    except (ValueError, TypeError) as e:
        print(f"kerasdl.distribute: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
