"""The ``kerasdl`` command.

Each subcommand lives in a module of ``kerasdl.commands`` that defines
``add_parser(subparsers)`` and ``run(args)``; keras is imported only once a
subcommand runs, so ``--help`` and usage errors answer at once.

A user mistake (a bad flag value, a missing or unreadable file, an output
path that cannot be written, a full disk) prints one line on stderr and
exits with code 2, with no traceback (set ``KERASDL_DEBUG=1`` to see it).
Subcommands check their flags and files before any training starts.
Messages speak of flags, not of the library's argument names: a library
message naming ``val_drivers`` names ``--val-drivers`` instead, and one
advising ``on_error='skip'`` or ``on_bad='skip'`` advises ``--skip-bad``.
A run that finished but produced a result that is not a number (such as
an RMSE of NaN) exits with code 1.

TensorFlow's start-up lines (absl's notice, oneDNN, CUDA and cuInit
lines) are kept off stderr: ``TF_CPP_MIN_LOG_LEVEL`` and absl's verbosity
are set before any TensorFlow import, and since TensorFlow 2.21 writes
those lines before it reads the level, stderr goes through
``kerasdl._native_log.StderrFilter`` from the moment TensorFlow is
imported until the command ends; every other line, errors included,
passes.
"""

import argparse
import importlib
import os
import re
import sys

COMMANDS = (
    "kerasdl.commands.demo",
    "kerasdl.commands.summary",
    "kerasdl.commands.movielens",
    "kerasdl.commands.statefarm",
    "kerasdl.commands.lr_find",
    "kerasdl.commands.train",
    "kerasdl.commands.predict",
)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SKIP = re.compile(
    r"""(pass(ing)?\s+)?`?on_(error|bad)\s*=\s*['"]skip['"]`?""")


class UsageError(Exception):
    """A mistake in what the user asked for; reported in one line."""


class ResultError(Exception):
    """A run that finished with a result that cannot be trusted (exit 1)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser():
    """Returns the argparse parser with every subcommand registered."""
    parser = _Parser(
        prog="kerasdl",
        description="The practical deep-learning workflow of the fast.ai "
                    "course, for Keras 3.",
    )
    parser.add_argument("--version", action="version",
                        version=f"kerasdl {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    parser.subcommands = sub.choices
    return parser


def main(argv=None):
    """Runs the command line; returns the exit code.

    Args:
        argv: list of str or None. The arguments (default: ``sys.argv``).

    Returns:
        0 on success, 1 when the result is not a number, 2 for a user
        mistake (reported in one line), 130 when interrupted.
    """
    from kerasdl import _native_log

    stderr_filter = _native_log.StderrFilter()
    hook = _native_log.quiet_tensorflow(stderr_filter)
    try:
        return _main(argv)
    finally:
        _native_log.uninstall(hook)
        stderr_filter.stop()


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    flags = _flags(parser.subcommands[args.command])
    try:
        code = args.func(args) or 0
        _flush_stdout()
        return code
    except (UsageError, ValueError, TypeError, OSError) as e:
        if os.environ.get("KERASDL_DEBUG"):
            raise
        message = _message(e)
        if isinstance(e, OSError) and e.filename is None and (
                _stdout_broken()):
            message = f"could not write to standard output: {message}"
        _report(args.command, user_terms(message, flags))
        return 2
    except ResultError as e:
        _report(args.command, _message(e))
        return 1
    except KeyboardInterrupt:
        print(f"kerasdl {args.command}: interrupted", file=sys.stderr)
        return 130


def user_terms(message, flags):
    """Rewrites a library message in the command line's terms.

    Args:
        message: str. One line.
        flags: dict. Argument name (``val_drivers``) -> flag
            (``--val-drivers``).

    Returns:
        The message with backticked argument names and ``name=value``
        written as flags, and ``on_error='skip'`` / ``on_bad='skip'``
        written as ``--skip-bad`` (for commands that have that flag).
    """
    if "skip_bad" in flags:
        message = _SKIP.sub(lambda m: (m.group(1) or "") + "--skip-bad",
                            message)
    message = re.sub(r"`(--[\w-]+)`", r"\1", message)
    for name, flag in flags.items():
        message = message.replace(f"`{name}`", flag)
        message = re.sub(rf"(?<![\w-]){name}=", f"{flag} ", message)
    return message


def _flags(subparser):
    out = {}
    for action in subparser._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs and action.dest not in ("help",):
            out[action.dest] = longs[0]
    return out


def _message(error):
    if isinstance(error, OSError) and error.strerror and (
            error.filename is not None):
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(_ANSI.sub("", text).split())


def _report(command, message):
    print(f"kerasdl {command}: error: {message}", file=sys.stderr)


def _stdout_broken():
    try:
        sys.stdout.flush()
    except OSError:
        silence_stdout()
        return True
    return False


def _flush_stdout():
    try:
        sys.stdout.flush()
    except OSError as e:
        silence_stdout()
        raise UsageError(f"could not write to standard output: "
                         f"{e.strerror or e}") from None


def silence_stdout():
    """Points standard output at the null device after a failed write, so
    that the exit does not raise a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _version():
    from kerasdl import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
