"""Subcommands of the ``kerasdl`` command, one module each."""


def parse_shape(text, arg="--input-shape"):
    """Parses ``"224,224,3"`` (or ``224x224x3``) into a tuple of ints."""
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


def print_json(obj):
    """Prints one JSON line."""
    import json

    print(json.dumps(obj, sort_keys=True))
