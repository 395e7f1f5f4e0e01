"""Reading and writing images with one-line errors that name the file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from railwatch.errors import InputError

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""File suffixes (lower case) that the folder readers take for images."""


def _open_image(path: str | Path) -> tuple[np.ndarray, str]:
    """Pixels and Pillow mode of an image file.

    Raises:
        InputError: missing or unreadable (naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image), image.mode
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path}: not a readable image ({type(err).__name__})") from None


def read_mask(path: str | Path) -> np.ndarray:
    """Read a binary mask image: any pixel brighter than half scale is set.

    Colour images are accepted when they are grey (all channels equal), as masks saved by
    common tools often are.

    Args:
        path: PNG, BMP, TIFF or any format Pillow reads.

    Returns:
        ``(H, W)`` bool array.

    Raises:
        InputError: missing, unreadable, or a colour image with different channels.
    """
    array, mode = _open_image(path)
    if array.ndim == 3:
        channels = array[..., :3] if mode in ("RGB", "RGBA") else array
        if not (channels == channels[..., :1]).all():
            raise InputError(f"{path}: expected a single-channel mask, got a colour image ({mode})")
        array = channels[..., 0]
    if array.dtype == bool:
        return array
    scale = 1 if array.max(initial=0) <= 1 else np.iinfo(array.dtype).max if array.dtype.kind in "ui" else 1
    return array > scale / 2


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an RGB image as ``(H, W, 3)`` uint8; grey and RGBA images are refused with the reason.

    Raises:
        InputError: missing, unreadable, or not three-channel colour.
    """
    array, mode = _open_image(path)
    if mode != "RGB" or array.ndim != 3 or array.shape[2] != 3:
        channels = 1 if array.ndim == 2 else array.shape[2]
        raise InputError(f"{path}: expected a 3-channel RGB image, got {channels} channel(s) ({mode})")
    return array


_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_path)`` beside ``path``, then rename it into place; no half file is left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_image(image: Image.Image, path: str | Path) -> Path:
    """Save ``image`` atomically; the format follows the suffix (PNG when there is none)."""
    image_format = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    return _atomic_write(path, lambda tmp: image.save(tmp, format=image_format))


def write_text(text: str, path: str | Path) -> Path:
    """Write text atomically (temporary file, then rename)."""
    return _atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
