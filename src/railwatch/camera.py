"""Pinhole camera on a flat track bed: projection of ground points and back.

Conventions (all right-handed, y down as in images):

- World: ``X`` lateral in metres (right of the camera positive), ``Z`` forward in metres along
  the ground from the point below the camera, rail tops at ``mount_height_m`` below the centre.
- Camera: pitched down by ``pitch_deg``; no roll, no yaw.
- Image: ``u`` column and ``v`` row in pixels, origin at the top-left pixel.

A ground point ``(X, Z)`` has camera coordinates ``x_c = X``,
``y_c = h cos p - Z sin p`` and depth ``z_c = h sin p + Z cos p``; it projects to
``u = c_x + f x_c / z_c`` and ``v = c_y + f y_c / z_c``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from railwatch.errors import GeometryError, InputError
from railwatch.yamlfile import first_validation_error, read_yaml_mapping


class Camera(BaseModel):
    """A calibrated cab camera. Every length is in metres, every image quantity in pixels.

    Args:
        width_px: Image width in pixels.
        height_px: Image height in pixels.
        focal_px: Focal length in pixels (``f``); 1400 px on 1920 px is a 69 degree field of view.
        cx_px: Principal point column in pixels; ``None`` for the image centre.
        cy_px: Principal point row in pixels; ``None`` for the image centre.
        mount_height_m: Height of the optical centre above the rail tops, in metres.
        pitch_deg: Downward tilt of the optical axis, in degrees.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    width_px: int = Field(1920, gt=0)
    height_px: int = Field(1080, gt=0)
    focal_px: float = Field(1400.0, gt=0)
    cx_px: float | None = None
    cy_px: float | None = None
    mount_height_m: float = Field(2.5, gt=0)
    pitch_deg: float = Field(2.0, ge=-45, le=45)

    @property
    def cx(self) -> float:
        """Principal point column in pixels."""
        return (self.width_px - 1) / 2 if self.cx_px is None else self.cx_px

    @property
    def cy(self) -> float:
        """Principal point row in pixels."""
        return (self.height_px - 1) / 2 if self.cy_px is None else self.cy_px

    @property
    def horizon_row(self) -> float:
        """Image row of the horizon of the ground plane, in pixels."""
        return self.cy - self.focal_px * math.tan(math.radians(self.pitch_deg))

    def depth(self, z_m: np.ndarray | float) -> np.ndarray:
        """Depth along the optical axis (m) of ground points at forward distance ``z_m`` (m)."""
        p = math.radians(self.pitch_deg)
        return self.mount_height_m * math.sin(p) + np.asarray(z_m, dtype=float) * math.cos(p)

    def project(self, x_m: np.ndarray | float, z_m: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Project ground points to pixels.

        Args:
            x_m: Lateral positions in metres, any shape.
            z_m: Forward distances in metres, broadcastable with ``x_m``; points must lie in
                front of the camera (positive depth).

        Returns:
            ``(u, v)`` columns and rows in pixels, float arrays of the broadcast shape.
        """
        p = math.radians(self.pitch_deg)
        x = np.asarray(x_m, dtype=float)
        z = np.asarray(z_m, dtype=float)
        zc = self.mount_height_m * math.sin(p) + z * math.cos(p)
        if np.any(zc <= 0):
            raise GeometryError("cannot project ground points behind the camera")
        yc = self.mount_height_m * math.cos(p) - z * math.sin(p)
        return self.cx + self.focal_px * x / zc, self.cy + self.focal_px * yc / zc

    def ground_point(self, u_px: np.ndarray | float, v_px: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Back-project pixels onto the ground plane (the inverse of :meth:`project`).

        Returns:
            ``(x_m, z_m)``; NaN for pixels on or above the horizon.
        """
        p = math.radians(self.pitch_deg)
        a = (np.asarray(v_px, dtype=float) - self.cy) / self.focal_px
        b = (np.asarray(u_px, dtype=float) - self.cx) / self.focal_px
        down = a * math.cos(p) + math.sin(p)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(down > 0, self.mount_height_m / down, np.nan)
        return t * b, t * (math.cos(p) - a * math.sin(p))


CAMERA_REQUIRED_FIELDS: tuple[str, ...] = ("width_px", "height_px", "focal_px", "mount_height_m", "pitch_deg")
"""Fields a camera file must set; ``cx_px`` and ``cy_px`` may be left out (image centre)."""


def load_camera(path: str | Path) -> Camera:
    """Read a calibrated camera from a YAML file of :class:`Camera` fields.

    The file is a mapping such as::

        width_px: 1024
        height_px: 512
        focal_px: 747.0
        mount_height_m: 2.5
        pitch_deg: 2.0
        cx_px: 511.5        # optional, image centre when left out
        cy_px: 255.5        # optional

    Args:
        path: The YAML file.

    Returns:
        The :class:`Camera`.

    Raises:
        InputError: naming the file and the field: the file is missing or not YAML, a required
            field (:data:`CAMERA_REQUIRED_FIELDS`) is missing, a field is unknown, or a value is
            out of range.
    """
    path = Path(path)
    data = read_yaml_mapping(path, "camera", InputError, f"a mapping of camera fields ({', '.join(CAMERA_REQUIRED_FIELDS)})")
    missing = [name for name in CAMERA_REQUIRED_FIELDS if name not in data]
    if missing:
        raise InputError(f"{path}: camera field {missing[0]} is missing (required: {', '.join(CAMERA_REQUIRED_FIELDS)})")
    try:
        return Camera.model_validate(data)
    except ValidationError as err:
        where, what = first_validation_error(err)
        raise InputError(f"{path}: camera field {where}: {what}") from None
