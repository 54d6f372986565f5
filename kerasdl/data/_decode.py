"""Reading one image file with Pillow: checks, RGB conversion, resizing.

Private helpers of kerasdl.data.images. Every failure becomes an
``ImageError`` that names the file, so that the loader can raise it or
skip the file and count it.
"""

import os

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class ImageError(ValueError):
    """An image file that cannot be used; ``path`` and ``reason`` say why."""

    def __init__(self, path, reason):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(
            f"Cannot use image {self.path!r}: {reason}. Remove or replace "
            f"the file, or pass on_error='skip' to skip such files and "
            f"count them in the loader's report."
        )


class LoadReport:
    """What a loader skipped: ``skipped`` is a list of ``(path, reason)``
    and ``empty_classes`` the class folders that held no file."""

    def __init__(self):
        self.skipped = []
        self.empty_classes = []

    @property
    def n_skipped(self):
        return len(self.skipped)

    def add(self, error):
        if all(p != error.path for p, _ in self.skipped):
            self.skipped.append((error.path, error.reason))

    def __repr__(self):
        lines = [f"LoadReport: {self.n_skipped} file(s) skipped, "
                 f"{len(self.empty_classes)} empty class folder(s)"]
        lines += [f"  skipped {p}: {r}" for p, r in self.skipped]
        lines += [f"  empty class folder {c}" for c in self.empty_classes]
        return "\n".join(lines)


def check_header(path):
    """Opens ``path`` and reads only its header; raises ``ImageError``."""
    try:
        with Image.open(path) as img:
            if img.width < 1 or img.height < 1:
                raise ImageError(path, f"empty image of size {img.size}")
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file Pillow can read") from None
    except (OSError, ValueError) as e:  # missing, unreadable, bad header
        if isinstance(e, ImageError):
            raise
        raise ImageError(path, f"{type(e).__name__}: {e}") from None


def to_rgb(img, background=(255, 255, 255)):
    """Converts any Pillow image to RGB; transparency is composited over
    ``background``."""
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        out = Image.new("RGB", rgba.size, background)
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.int64)
        top = 65535 if img.mode.startswith("I;16") else max(int(arr.max()), 1)
        arr = np.clip(arr * 255 // top, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, "L")
    return img.convert("RGB")


def decode(path, size, interpolation="bilinear"):
    """Decodes ``path`` to a uint8 array of shape ``size + (3,)``.

    Args:
        path: str. The file.
        size: tuple ``(height, width)``.
        interpolation: str. Pillow resampling filter name.

    Raises:
        ImageError: the file is missing, unreadable, not an image,
            truncated or corrupt.
    """
    height, width = size
    try:
        with Image.open(path) as img:
            if img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK"):
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the
                # target is that much smaller: same result class, less work.
                img.draft("RGB", (width, height))
            img.load()
            img = to_rgb(img)
            if img.size != (width, height):
                img = img.resize((width, height), _RESAMPLE[interpolation])
            arr = np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageError(path, f"{type(e).__name__}: {e}") from None
    if arr.shape != (height, width, 3):
        raise ImageError(path, f"decoded to shape {arr.shape}")
    return arr
