"""Where an object stands against the ego track (paper 003, section 2.3.1, Eq. 9-14).

At the image row of the object's foot point the ego rails are ``v_R - v_L`` pixels apart; the
known rail spacing turns pixels into millimetres (Eq. 10), the track centre is their middle
(Eq. 11), and the foot point's column gives the lateral offset (Eq. 12-13) and the distances
to the rails (Eq. 14). The same width, with the focal length, gives the distance ahead by
flat-ground monocular ranging: ``d_y = f * spacing / (v_R - v_L)``, which the paper leaves
unspecified. Pure numpy, vectorised over any number of foot points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from railwatch.config import GaugeConfig
from railwatch.errors import GeometryError, InputError
from railwatch.intrusion.railfit import RailFit


@dataclass(frozen=True)
class LateralPosition:
    """Foot points placed against the ego track; each field has the batch's shape.

    Attributes:
        k_mm_per_px: Scale at the foot row, mm per pixel (Eq. 10).
        centre_px: Column of the track centre at the foot row, px (Eq. 11).
        gauge_px: Distance between the ego rail lines at the foot row, px (Eq. 9).
        offset_mm: Signed offset from the track centre, mm, negative to the left (Eq. 12-13).
        d_left_mm: ``offset + gauge/2``: distance right of the left rail's gauge face, mm (Eq. 14).
        d_right_mm: ``offset - gauge/2``: distance right of the right rail's gauge face, mm (Eq. 14).
        valid: False where the foot row lies outside the rows both ego rails were seen on;
            the other fields are NaN there.
    """

    k_mm_per_px: np.ndarray
    centre_px: np.ndarray
    gauge_px: np.ndarray
    offset_mm: np.ndarray
    d_left_mm: np.ndarray
    d_right_mm: np.ndarray
    valid: np.ndarray


def lateral_position(
    foot_u: np.ndarray | float,
    foot_v: np.ndarray | float,
    fit: RailFit,
    gauge: GaugeConfig | None = None,
    row_tolerance_px: float = 8.0,
) -> LateralPosition:
    """Lateral offset of foot points from the ego track centre (Eq. 9-14).

    Args:
        foot_u: Foot point columns in pixels (any shape).
        foot_v: Foot point rows in pixels, broadcastable with ``foot_u``.
        fit: Rails fitted on the same image, with the ego pair marked.
        gauge: Gauge and rail-head width; the fitted rail lines lie
            ``gauge_mm + rail_head_width_mm`` apart.
        row_tolerance_px: Rows this far beyond the ego rails' seen range are still placed.

    Returns:
        A :class:`LateralPosition`.

    Raises:
        GeometryError: the fit has no ego track.
        InputError: a foot point lies outside the image, or is NaN.
    """
    gauge = gauge or GaugeConfig()
    left, right = fit.ego_left, fit.ego_right
    if left is None or right is None:
        raise GeometryError("no ego track: fewer than two rails straddle the camera")
    u, v = np.broadcast_arrays(np.asarray(foot_u, dtype=float), np.asarray(foot_v, dtype=float))
    height, width = fit.shape
    if np.isnan(u).any() or np.isnan(v).any():
        raise InputError("foot point contains NaN")
    outside = (u < 0) | (u > width - 1) | (v < 0) | (v > height - 1)
    if outside.any():
        i = int(np.flatnonzero(outside.ravel())[0])
        raise InputError(
            f"foot point ({u.ravel()[i]:g}, {v.ravel()[i]:g}) is outside the {width}x{height} image"
        )
    x_left, x_right = left.x_at(v), right.x_at(v)
    gauge_px = x_right - x_left
    valid = left.covers(v, row_tolerance_px) & right.covers(v, row_tolerance_px) & (gauge_px > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gauge_px = np.where(valid, gauge_px, np.nan)
        k = gauge.rail_line_spacing_mm / gauge_px
    centre = (x_left + x_right) / 2
    offset = k * (u - centre)
    return LateralPosition(
        k_mm_per_px=k,
        centre_px=np.where(valid, centre, np.nan),
        gauge_px=gauge_px,
        offset_mm=offset,
        d_left_mm=offset + gauge.half_gauge_mm,
        d_right_mm=offset - gauge.half_gauge_mm,
        valid=valid,
    )


def gauge_distance_m(
    gauge_px: np.ndarray | float, focal_px: float, gauge: GaugeConfig | None = None
) -> np.ndarray:
    """Distance ahead of the camera from the ego rails' pixel spacing (flat-ground ranging).

    ``d_y = focal_px * spacing_m / gauge_px``: the depth along the optical axis at which the
    rail lines, ``spacing_m`` apart, appear ``gauge_px`` pixels apart.

    Args:
        gauge_px: Distance between the ego rail lines at the foot row, in pixels (> 0; NaN passes through).
        focal_px: Focal length in pixels.
        gauge: Gauge and rail-head width giving the rail-line spacing.

    Returns:
        Distance in metres, same shape as ``gauge_px``.
    """
    gauge = gauge or GaugeConfig()
    if not focal_px > 0:
        raise InputError(f"focal length must be > 0 px, got {focal_px:g}")
    width = np.asarray(gauge_px, dtype=float)
    if (width <= 0).any():
        raise InputError("rail spacing in pixels must be > 0")
    return focal_px * (gauge.rail_line_spacing_mm / 1000.0) / width
