"""Reading one image file with Pillow: checks, RGB conversion, resizing.

Private helpers of kerasdl.data.images. Every failure becomes an
``ImageError`` that names the file, so that the loader can raise it or
skip the file and count it.
"""

import os
import stat

import numpy as np
from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError

# Names that operating systems leave in folders; never images.
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db"})

_ORIENTATION = 0x0112  # EXIF tag: how the camera was held

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
    """What a loader left out.

    ``skipped``: ``(path, reason)`` of bad files (``on_error="skip"``);
    ``empty_classes``: class folders that held no file; ``ignored``:
    ``(path, reason)`` of files left out by rule (hidden files such as
    .DS_Store, Thumbs.db, desktop.ini, files outside class folders or not
    matching a pattern or extension).
    """

    def __init__(self):
        self.skipped = []
        self.empty_classes = []
        self.ignored = []

    def ignore(self, path, reason):
        """Records a file that was left out on purpose (hidden, system,
        not matching), so that nothing is dropped without a line."""
        self.ignored.append((os.fspath(path), reason))

    @property
    def n_skipped(self):
        return len(self.skipped)

    def add(self, error):
        if all(p != error.path for p, _ in self.skipped):
            self.skipped.append((error.path, error.reason))

    def __repr__(self):
        lines = [f"LoadReport: {self.n_skipped} file(s) skipped, "
                 f"{len(self.ignored)} ignored, "
                 f"{len(self.empty_classes)} empty class folder(s)"]
        lines += [f"  skipped {p}: {r}" for p, r in self.skipped]
        lines += [f"  ignored {p}: {r}" for p, r in self.ignored]
        lines += [f"  empty class folder {c}" for c in self.empty_classes]
        return "\n".join(lines)


def is_hidden(name):
    """Hidden or system file names (".DS_Store", "Thumbs.db", ...)."""
    return name.startswith(".") or name.lower() in SYSTEM_FILES


def _check_regular(path):
    """Refuses what is not a regular file before opening it (a FIFO
    would block the reader forever)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageError(path, f"broken symbolic link to "
                                   f"{os.readlink(path)!r}") from None
        raise ImageError(path, "file not found") from None
    except OSError as e:
        raise ImageError(path, f"{type(e).__name__}: {e}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else
                "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or
                stat.S_ISBLK(st.st_mode) else "not a file")
        raise ImageError(path, f"not a regular file ({kind})")


def _bomb(e):
    return (f"too many pixels for a safe decode ({e}); it may be a "
            f"decompression bomb")


def check_header(path, min_size=1):
    """Opens ``path`` and reads only its header; raises ``ImageError``.

    Args:
        path: str.
        min_size: int. Smallest accepted width and height in pixels.
    """
    _check_regular(path)
    try:
        with Image.open(path) as img:
            if img.width < 1 or img.height < 1:
                raise ImageError(path, f"empty image of size {img.size}")
            if min(img.width, img.height) < min_size:
                raise ImageError(
                    path, f"image of {img.width}x{img.height} pixels is "
                          f"smaller than min_size={min_size} a side (pass "
                          f"a smaller min_size to use it)")
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise ImageError(path, _bomb(e)) from None
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


def decode(path, size, interpolation="bilinear", *, draft=True):
    """Decodes ``path`` to a uint8 array of shape ``size + (3,)``.

    Args:
        path: str. The file.
        size: tuple ``(height, width)``.
        interpolation: str. Pillow resampling filter name.
        draft: bool. Let libjpeg decode a JPEG at 1/2, 1/4 or 1/8 scale
            (from the DCT coefficients) when the target is at most that
            size: several times less work for large photos, and a result
            within a few levels of the full decode. A target larger than
            half the file gives the same pixels either way.

    Raises:
        ImageError: the file is missing, unreadable, not an image,
            truncated, corrupt, or has too many pixels to decode safely.

    The EXIF orientation is applied first, as
    ``PIL.ImageOps.exif_transpose`` does.
    """
    height, width = size
    _check_regular(path)
    try:
        with Image.open(path) as img:
            orientation = img.getexif().get(_ORIENTATION, 1)
            turned = orientation in (5, 6, 7, 8)
            if draft and img.format == "JPEG" and img.mode in (
                    "RGB", "L", "CMYK"):
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the
                # target is that much smaller: same result class, less work.
                img.draft("RGB", (height, width) if turned else
                          (width, height))
            img.load()
            if orientation in (2, 3, 4, 5, 6, 7, 8):
                # Phone photos: turn the pixels as the EXIF orientation says
                # (an upright photo is not copied).
                img = ImageOps.exif_transpose(img)
            img = to_rgb(img)
            if img.size != (width, height):
                img = img.resize((width, height), _RESAMPLE[interpolation])
            arr = np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise ImageError(path, _bomb(e)) from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageError(path, f"{type(e).__name__}: {e}") from None
    if arr.shape != (height, width, 3):
        raise ImageError(path, f"decoded to shape {arr.shape}")
    return arr
