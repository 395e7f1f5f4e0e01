"""Shared fixtures: small cameras and generated masks, made in the test, nothing on disk."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from railwatch.camera import Camera


@pytest.fixture
def small_camera() -> Camera:
    """A 960x540 camera (half the default resolution, same field of view)."""
    return Camera(width_px=960, height_px=540, focal_px=700.0)


def save_mask(mask: np.ndarray, path) -> str:
    """Write a bool mask as an 8-bit PNG and return its path as a string."""
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return str(path)
