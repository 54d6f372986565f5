"""Argument checks shared by the model builders."""


def input_shape(value, *, rank=3, arg="input_shape"):
    """Validates a channels-last input shape and returns it as a tuple."""
    try:
        shape = tuple(value)
    except TypeError:
        raise TypeError(
            f"`{arg}` must be a tuple of {rank} positive integers such as "
            f"(224, 224, 3). Received: {arg}={value!r}."
        ) from None
    if len(shape) != rank or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0
        for d in shape
    ):
        raise ValueError(
            f"`{arg}` must be {rank} positive integers (height, width, "
            f"channels), channels last, such as (224, 224, 3). "
            f"Received: {arg}={value!r}."
        )
    return shape


def n_classes(value):
    """Validates a class count (an int >= 2)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(
            f"`n_classes` must be an integer >= 2. Received: "
            f"n_classes={value!r}."
        )
    if value < 2:
        raise ValueError(
            f"`n_classes` must be >= 2 (a classifier needs at least two "
            f"classes). Received: n_classes={value}."
        )
    return value


def probability(value, arg):
    """Validates a dropout rate in [0, 1)."""
    if not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(
            f"`{arg}` must be a dropout rate in [0, 1). Received: "
            f"{arg}={value!r}."
        )
    return float(value)


def positive_int(value, arg):
    """Validates a positive integer such as a unit count."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"`{arg}` must be a positive integer. Received: {arg}={value!r}."
        )
    return value
