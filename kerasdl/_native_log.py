"""Keeps the TensorFlow runtime's start-up lines off a command's stderr.

When TensorFlow loads it writes lines such as ``WARNING: All log messages
before absl::InitializeLog() is called are written to STDERR``, ``I0000
... port.cc:153] oneDNN custom operations are on ...`` and, on a machine
with CUDA libraries but no GPU, ``E0000 ... failed call to cuInit``.
TensorFlow 2.21 writes them before its logging reads
``TF_CPP_MIN_LOG_LEVEL``, so that variable does not hide them
(bench/NOTES.md).

``StderrFilter`` routes file descriptor 2 through a small child process
that drops exactly those lines (``NOISE``) and passes everything else on
at once, line by line: warnings and errors of the native runtime, Python
tracebacks, kerasdl's own messages. The child outlives a crash of the
command, so even the last lines of an abort reach the terminal.
``kerasdl.cli`` starts it just before TensorFlow is imported and stops
it when the command ends.
"""

import importlib.abc
import os
import re
import subprocess
import sys

_GLOG = r"[{levels}]\d{{4}} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
_OLD = r"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [{levels}] \S+:\d+\] "
_KNOWN = (r"(?:cuInit|Could not find cuda drivers|Unable to register cu\w+ "
          r"factory|TF-TRT Warning|oneDNN|computation "
          r"placer already registered)")

#: The lines dropped: absl's notice, the native runtime's information
#: lines, its warnings and errors about CUDA, cuDNN, TensorRT and oneDNN
#: at start-up, and the continuation of the CPU-instructions notice.
NOISE = "|".join([
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called",
    "^" + _GLOG.format(levels="I"),
    "^" + _OLD.format(levels="I"),
    "^(?:" + _GLOG.format(levels="WE") + "|" + _OLD.format(levels="WE") +
    ").*" + _KNOWN,
    r"^To enable the following instructions: .* rebuild TensorFlow with "
    r"the appropriate compiler flags",
])

_CHILD = """
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
noise = re.compile(sys.argv[1])
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    if noise.search(line.decode("utf-8", "replace")):
        continue
    try:
        out.write(line)
        out.flush()
    except OSError:
        pass
"""


def is_noise(line):
    """Whether ``line`` is one of the start-up lines ``NOISE`` drops.

    Example:

    >>> is_noise("I0000 00:00:1796009326.388927    2183 port.cc:153] "
    ...          "oneDNN custom operations are on.")
    True
    >>> is_noise("E0000 00:00:1796009326.388927    2183 gpu.cc:7] out of "
    ...          "memory")
    False
    """
    return re.search(NOISE, line) is not None


class StderrFilter:
    """Routes file descriptor 2 through a child process that drops
    ``NOISE`` lines; ``stop`` puts the original stderr back."""

    def __init__(self):
        self._child = None
        self._saved = None

    @property
    def active(self):
        return self._child is not None

    def start(self):
        """Starts filtering (nothing happens if it cannot be set up)."""
        if self._child is not None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        try:
            saved = os.dup(2)
        except OSError:
            return  # no stderr to filter
        read, write = os.pipe()
        try:
            child = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _CHILD, NOISE],
                stdin=read, stdout=saved, stderr=saved, close_fds=True)
        except OSError:
            for fd in (read, write, saved):
                os.close(fd)
            return
        os.close(read)
        os.dup2(write, 2)
        os.close(write)
        self._child, self._saved = child, saved

    def stop(self):
        """Puts the original stderr back and waits until every line
        written so far has been passed on."""
        if self._child is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        child, self._child, self._saved = self._child, None, None
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # a process started by the command still holds the pipe
            child.kill()
            child.wait()


class _BeforeImport(importlib.abc.MetaPathFinder):
    """Starts a filter when ``tensorflow`` is about to be imported."""

    def __init__(self, stderr_filter):
        self.stderr_filter = stderr_filter

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "tensorflow":
            uninstall(self)
            self.stderr_filter.start()
        return None


def quiet_tensorflow(stderr_filter):
    """Prepares a command run: the log level and absl's verbosity set, and
    ``stderr_filter`` started at the first ``import tensorflow``.

    Args:
        stderr_filter: StderrFilter. Stopped by the caller when the
            command ends.

    Returns:
        The import hook installed (pass it to ``uninstall``), or None when
        TensorFlow was imported already.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from absl import logging as absl_logging
    except ImportError:
        pass
    else:
        absl_logging.set_verbosity(absl_logging.ERROR)
    if "tensorflow" in sys.modules:
        return None
    hook = _BeforeImport(stderr_filter)
    sys.meta_path.insert(0, hook)
    return hook


def uninstall(hook):
    """Removes an import hook of ``quiet_tensorflow`` (if still there)."""
    while hook is not None and hook in sys.meta_path:
        sys.meta_path.remove(hook)
