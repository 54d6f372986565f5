"""The ``kerasdl`` command.

Each subcommand lives in a module of ``kerasdl.commands`` that defines
``add_parser(subparsers)`` and ``run(args)``; keras is imported only once a
subcommand runs, so ``--help`` and usage errors answer at once. A user
mistake prints one line and exits with code 2 (set ``KERASDL_DEBUG=1`` for
the traceback).
"""

import argparse
import importlib
import os
import sys

COMMANDS = (
    "kerasdl.commands.demo",
    "kerasdl.commands.summary",
    "kerasdl.commands.movielens",
    "kerasdl.commands.statefarm",
    "kerasdl.commands.lr_find",
)


class UsageError(Exception):
    """A mistake in what the user asked for; reported in one line."""


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
    return parser


def main(argv=None):
    """Runs the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return args.func(args) or 0
    except (UsageError, ValueError, TypeError, FileNotFoundError) as e:
        if os.environ.get("KERASDL_DEBUG"):
            raise
        message = " ".join(str(e).split())
        print(f"kerasdl {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kerasdl {args.command}: interrupted", file=sys.stderr)
        return 130


def _version():
    from kerasdl import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
