"""Subcommands of the ``kerasdl`` command, one module each.

The helpers here are what every subcommand uses to check its flags and
files before any long work starts, so that a mistake is reported in one
line naming the flag (``kerasdl.cli`` prints it and exits with code 2):
``output_path`` for a file the command will write, ``input_file`` for a
file it will read, ``seed`` for ``--seed``, ``check_memory`` for sizes the
machine cannot hold, ``writing`` around the write itself (a full disk
becomes one line naming the path), and ``print_json``, the one printer of
machine-readable output.
"""

import contextlib
import errno
import os

from kerasdl import _validate

_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS,
                 errno.EIO}

#: Largest seed accepted by ``--seed`` (NumPy and Keras take 32 bits).
MAX_SEED = 2 ** 32 - 1


def parse_shape(text, arg="--input-shape"):
    """Parses ``"224,224,3"`` (or ``224x224x3``) into a tuple of ints.

    Raises:
        UsageError: not three positive integers.
    """
    from kerasdl.cli import UsageError

    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UsageError(
            f"{arg} must be three positive integers H,W,C such as "
            f"224,224,3; got {text!r}"
        )
    return shape


def seed(value, flag="--seed"):
    """Checks a seed: an integer in [0, 2**32 - 1]; returns it."""
    value = _validate.integer(value, flag, low=0,
                              hint="Pass a seed such as 0.")
    if value > MAX_SEED:
        raise ValueError(f"{flag} must be at most 2**32 - 1 = {MAX_SEED}. "
                         f"Received: {flag} {value}.")
    return value


def output_path(path, flag):
    """Checks a file the command will write, before any long work.

    Args:
        path: str. The path given to the flag.
        flag: str. The flag, such as ``"--plot"``.

    Returns:
        The path as str.

    Raises:
        ValueError: the path is empty, a folder, or in a folder that does
            not exist or cannot be written (the message names ``flag``).
    """
    return _validate.output_file(path, flag)


def output_folder(path, flag):
    """Checks a folder the command will create or fill with files.

    The folder may exist (files in it are replaced) or not (it is created
    with its parents); it must not be a file, and the nearest folder that
    exists must be writable.

    Returns:
        The path as str.

    Raises:
        ValueError: the path is empty, names a file, or cannot be written.
    """
    path = os.fspath(path)
    if not path:
        _refuse(flag, "a folder name", path, "Pass a folder such as 'out'.")
    if os.path.exists(path) and not os.path.isdir(path):
        _refuse(flag, "a folder, not an existing file", path,
                "Pass a new folder name or remove the file.")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        _refuse(flag, "a path under a folder, not under a file", path,
                f"{existing!r} is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        _refuse(flag, "a folder you can write to", path,
                f"{existing!r} is not writable.")
    return path


def input_file(path, flag):
    """Checks a file the command will read: it exists, is a regular file,
    is readable and is not empty.

    Returns:
        The path as str.

    Raises:
        ValueError: any of these fails (the message names ``flag``).
    """
    path = os.fspath(path)
    if not path:
        _refuse(flag, "the path of a file", path, "Pass a file name.")
    if not os.path.exists(path):
        _refuse(flag, "a file that exists", path,
                "Check the path (no such file).")
    if not os.path.isfile(path):
        _refuse(flag, "a regular file", path, "It is a folder or a device.")
    if not os.access(path, os.R_OK):
        _refuse(flag, "a file you can read", path, "Check its permissions.")
    if os.path.getsize(path) == 0:
        _refuse(flag, "a file that is not empty", path,
                "It holds 0 bytes; write it again.")
    return path


def check_flags(*, outputs=None, integers=None, positives=None,
                seeds=None):
    """Checks a command's output paths and numbers in one call, before
    any long work.

    Example (``kerasdl lr-find``):

    >>> check_flags(outputs={"--plot": "lr_find.png"},
    ...             integers={"--num-it": (100, 1), "--batch-size": (64, 1)},
    ...             positives={"--start-lr": 1e-7, "--end-lr": 10.0},
    ...             seeds={"--seed": 0})

    Args:
        outputs: dict or None. Flag -> path of a file to be written
            (``output_path``).
        integers: dict or None. Flag -> ``(value, lowest allowed)``.
        positives: dict or None. Flag -> a number that must be finite and
            > 0.
        seeds: dict or None. Flag -> a seed (``seed``).

    Raises:
        TypeError, ValueError: the first flag that breaks its rule, named
            in the message.
    """
    for flag, path in (outputs or {}).items():
        output_path(path, flag)
    for flag, (value, low) in (integers or {}).items():
        _validate.integer(value, flag, low=low)
    for flag, value in (positives or {}).items():
        _validate.positive(value, flag)
    for flag, value in (seeds or {}).items():
        seed(value, flag)


def memory_limit():
    """Bytes a command may plan to hold in memory: half of the machine's
    physical memory (16 GiB when it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 32 * 2 ** 30
    return total // 2


def check_memory(n_bytes, what, advice):
    """Refuses a plan that needs more memory than ``memory_limit()``.

    Args:
        n_bytes: int. Bytes needed.
        what: str. What needs them, such as ``"conv_bn with --classes
            1000000000000 (201,000,007,393,588 parameters)"``.
        advice: str. What to do instead.

    Raises:
        ValueError: ``n_bytes`` is over the limit.
    """
    limit = memory_limit()
    if n_bytes > limit:
        raise ValueError(
            f"{what} needs {_size(n_bytes)} of memory, more than half of "
            f"this machine's ({_size(limit)} allowed); {advice}")


@contextlib.contextmanager
def writing(path, flag):
    """Turns an ``OSError`` while writing ``path`` into one line.

    A full disk, a quota or a vanished folder then reads, for example,
    ``could not write --plot out.png: No space left on device``.

    Raises:
        UsageError: the write failed.
    """
    from kerasdl.cli import UsageError

    try:
        yield path
    except OSError as e:
        if not _is_write_error(e, path):
            raise  # a file read, not the output: reported as it is
        reason = e.strerror or str(e)
        where = f" ({e.filename})" if e.filename and os.fspath(
            e.filename) != os.fspath(path) else ""
        raise UsageError(f"could not write {flag} {path}: {reason}"
                         f"{where}") from None


@contextlib.contextmanager
def printing():
    """Turns an ``OSError`` while printing to standard output (a full
    disk, a closed pipe) into one line.

    Raises:
        UsageError: standard output cannot be written.
    """
    import sys

    from kerasdl.cli import UsageError
    from kerasdl.cli import silence_stdout

    try:
        yield
        sys.stdout.flush()
    except OSError as e:
        if e.filename is not None:
            raise
        silence_stdout()
        raise UsageError(f"could not write to standard output: "
                         f"{e.strerror or e}") from None


def print_json(obj):
    """Prints one line of valid JSON (RFC 8259) and flushes it.

    NaN and infinite numbers have no JSON form: each becomes ``null`` and
    its key is listed, in order, under ``"not_finite"`` (dotted for
    nested keys, such as ``"lr_find.valley"``). Rows without such numbers
    have no ``"not_finite"`` key.

    Args:
        obj: dict. The record.

    Returns:
        The list of keys whose numbers were not finite.

    Raises:
        UsageError: standard output cannot be written (such as a full
            disk).
    """
    import json

    from kerasdl.cli import UsageError
    from kerasdl.cli import silence_stdout
    from kerasdl.report import json_ready

    clean, bad = json_ready(obj)
    if bad:
        clean = {**clean, "not_finite": bad}
    text = json.dumps(clean, sort_keys=True, allow_nan=False)
    try:
        print(text, flush=True)
    except OSError as e:
        silence_stdout()
        raise UsageError(f"could not write the JSON output to standard "
                         f"output: {e.strerror or e}") from None
    return bad


def _is_write_error(error, path):
    if error.filename is not None:
        return _inside(error.filename, path)
    return error.errno in _WRITE_ERRNOS


def _inside(name, path):
    name = os.path.abspath(os.fspath(name))
    path = os.path.abspath(os.fspath(path))
    return name == path or name.startswith(path.rstrip(os.sep) + os.sep) \
        or os.path.dirname(name) == os.path.dirname(path)


def _refuse(flag, what, value, hint):
    raise ValueError(f"{flag} must be {what}. Received: {flag} "
                     f"{value!r}. {hint}")


def _size(n_bytes):
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n_bytes < 1000 or unit == "TB":
            break
        n_bytes /= 1000
    return f"{n_bytes:,.1f} {unit}" if unit != "bytes" else f"{n_bytes} bytes"
