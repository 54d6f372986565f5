"""Points on images (landmarks such as the centre of a head) as targets.

kerasdl keeps a point as ``(x, y)`` scaled to [-1, 1] over the image's
edges: ``x = -1`` is the left edge of the leftmost pixel, ``x = 1`` the
right edge of the rightmost one, ``y = -1`` the top edge and ``y = 1`` the
bottom edge. In pixels, ``x = 0`` is the left edge of the image and
``x = width`` its right edge, so the centre of pixel column ``j`` is at
``x = j + 0.5``. Resizing the image (edge to edge, as Pillow does) leaves
a scaled point where it was: the same numbers are right at every
``image_size``. Several points per image are flat rows
``x0, y0, x1, y1, ...``, the layout ``show_results`` draws.

``images_from_csv(..., points=True)`` reads pixel columns with these
helpers; ``ImageBatches(..., points=True, augment=RandomAffine(...))``
moves the points with the augmentation.
"""

import os

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from kerasdl.data import _decode
from kerasdl.data._decode import ImageError

__all__ = ["check_points", "image_size", "scale_points", "unscale_points"]


def _pairs(points, name):
    a = np.asarray(points, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] % 2 or a.shape[1] == 0:
        raise ValueError(
            f"`{name}` must be rows of x, y pairs (x0, y0, x1, y1, ...), "
            f"an even number of values per image. Received shape "
            f"{np.shape(points)}.")
    return a


def _sizes(width, height, n):
    w = np.broadcast_to(np.asarray(width, np.float64), (n,))
    h = np.broadcast_to(np.asarray(height, np.float64), (n,))
    if not (np.all(w > 0) and np.all(h > 0)):
        raise ValueError(f"`width` and `height` must be > 0. Received: "
                         f"width={width!r}, height={height!r}.")
    return w[:, None], h[:, None]


def scale_points(points, width, height):
    """Pixel coordinates to [-1, 1] (see the module's docstring).

    Example:

    >>> scale_points([[0, 0, 32, 24, 64, 48]], 64, 48)
    array([[-1., -1.,  0.,  0.,  1.,  1.]], dtype=float32)
    >>> scale_points([0.5, 0.5], 64, 48)  # centre of the top-left pixel
    array([[-0.984375 , -0.9791667]], dtype=float32)

    Args:
        points: array ``(n, 2k)`` (or one row ``(2k,)``): ``x, y`` pairs
            in pixels, ``(0, 0)`` the top-left corner of the image.
        width, height: numbers, or arrays of ``n``: each image's size in
            pixels.

    Returns:
        float32 array ``(n, 2k)``.

    Raises:
        ValueError: an odd number of values, or a size <= 0.
    """
    p = _pairs(points, "points")
    w, h = _sizes(width, height, len(p))
    out = p.copy()
    out[:, 0::2] = 2 * p[:, 0::2] / w - 1
    out[:, 1::2] = 2 * p[:, 1::2] / h - 1
    return out.astype(np.float32)


def unscale_points(points, width, height):
    """[-1, 1] back to pixels of an image of ``width`` x ``height``.

    Use it on a model's predictions to draw them on the original photo.

    Example:

    >>> unscale_points([[-1, 1, 0, 0]], 64, 48)
    array([[ 0., 48., 32., 24.]], dtype=float32)

    Args:
        points: array ``(n, 2k)`` or ``(2k,)``: scaled ``x, y`` pairs.
        width, height: numbers, or arrays of ``n``.

    Returns:
        float32 array ``(n, 2k)`` in pixels.

    Raises:
        ValueError: an odd number of values, or a size <= 0.
    """
    p = _pairs(points, "points")
    w, h = _sizes(width, height, len(p))
    out = p.copy()
    out[:, 0::2] = (p[:, 0::2] + 1) * w / 2
    out[:, 1::2] = (p[:, 1::2] + 1) * h / 2
    return out.astype(np.float32)


def outside(points):
    """Index ``(row, point)`` of the first scaled point outside [-1, 1]
    (or not finite), or None."""
    p = np.asarray(points, np.float64).reshape(len(points), -1, 2)
    bad = ~(np.isfinite(p) & (np.abs(p) <= 1)).all(axis=2)
    if not bad.any():
        return None
    row, k = np.argwhere(bad)[0]
    return int(row), int(k)


def check_points(points, paths=None, sizes=None):
    """Refuses scaled points outside [-1, 1], naming the file and point.

    Example:

    >>> check_points([[0.5, -1.0], [1.2, 0.0]], ["a.png", "b.png"],
    ...              [(64, 48), (64, 48)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Point 0 of 'b.png' is (x=70.4, y=24) in pixels, outside ...

    Args:
        points: array ``(n, 2k)``, scaled.
        paths: list of str or None. The file of each row, for the message.
        sizes: list of ``(width, height)`` or None. For the message: the
            point is then given in pixels too.

    Returns:
        The points.

    Raises:
        ValueError: a point outside the image or not finite.
    """
    where = outside(points)
    if where is None:
        return points
    row = where[0]
    name = repr(paths[row]) if paths is not None else f"row {row}"
    k, found = describe(points, row, None if sizes is None else sizes[row])
    raise ValueError(
        f"Point {k} of {name} is {found}. Points must lie inside the image "
        f"(0 <= x <= width and 0 <= y <= height in pixels; -1 to 1 "
        f"scaled). Fix the row or leave it out.")


def describe(points, row, size=None):
    """``(k, text)``: the first point of ``row`` outside [-1, 1] and
    where it is, in pixels when the image's ``(width, height)`` is
    given."""
    p = np.asarray(points, np.float64)[row].reshape(-1, 2)
    bad = ~(np.isfinite(p) & (np.abs(p) <= 1)).all(axis=1)
    k = int(np.argmax(bad))
    x, y = p[k]
    if size is not None:
        w, h = size
        px, py = unscale_points([x, y], w, h)[0]
        return k, (f"(x={px:g}, y={py:g}) in pixels, outside the {w}x{h} "
                   f"image")
    return k, f"(x={x:g}, y={y:g}) after scaling to [-1, 1]: outside the " \
              f"image"


def image_size(path):
    """``(width, height)`` of an image as the loader shows it (after the
    EXIF orientation), reading only the header.

    Raises:
        ImageError: the file is missing or not an image.
    """
    path = os.fspath(path)
    _decode._check_regular(path)
    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.getexif().get(_decode._ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageError(path, f"{type(e).__name__}: {e}") from None
    return width, height
