"""Grade objects seen in an image: foot point -> lateral offset, distance -> risk level.

Joins :mod:`railwatch.intrusion.geometry` (Eq. 9-14 and gauge ranging) to
:mod:`railwatch.intrusion.risk` (Eq. 15-17) for a batch of foot points on one image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from railwatch.config import IntrusionConfig
from railwatch.intrusion.geometry import LateralPosition, gauge_distance_m, lateral_position
from railwatch.intrusion.railfit import RailFit
from railwatch.intrusion.risk import RiskAssessment, assess_risk, canonical_type


@dataclass(frozen=True)
class GradedObjects:
    """Position and risk of a batch of objects; ``risk`` covers only the ``placed`` ones.

    Attributes:
        types: Canonical class names, ``(N,)``.
        foot_u: Foot columns in px, ``(N,)``.
        foot_v: Foot rows in px, ``(N,)``.
        speed_mps: Speeds in m/s, ``(N,)``.
        position: Lateral placement against the ego track.
        distance_m: Distance ahead by gauge ranging in m, ``(N,)`` (NaN where not placed).
        placed: Whether the foot row lies on the ego track's fitted rows, ``(N,)``.
        risk: Risk of the placed objects, in their order.
    """

    types: np.ndarray
    foot_u: np.ndarray
    foot_v: np.ndarray
    speed_mps: np.ndarray
    position: LateralPosition
    distance_m: np.ndarray
    placed: np.ndarray
    risk: RiskAssessment

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per object; unplaced objects carry ``level: null`` and a reason."""
        risk_rows = iter(self.risk.records())
        out: list[dict[str, Any]] = []
        for i in range(self.types.size):
            row: dict[str, Any] = {
                "type": str(self.types[i]),
                "foot_px": [round(float(self.foot_u[i]), 2), round(float(self.foot_v[i]), 2)],
                "speed_mps": float(self.speed_mps[i]),
            }
            if self.placed[i]:
                row.update(
                    {
                        "k_mm_per_px": round(float(self.position.k_mm_per_px[i]), 4),
                        "d_left_mm": round(float(self.position.d_left_mm[i]), 1),
                        "d_right_mm": round(float(self.position.d_right_mm[i]), 1),
                    }
                )
                row.update(next(risk_rows))
                row["distance_method"] = "flat-ground gauge ranging"
            else:
                row.update({"level": None, "reason": "foot row outside the fitted ego rails"})
            out.append(row)
        return out


def grade_objects(
    fit: RailFit,
    foot_u: np.ndarray,
    foot_v: np.ndarray,
    types: list[str] | np.ndarray,
    speed_mps: np.ndarray | float = 0.0,
    config: IntrusionConfig | None = None,
) -> GradedObjects:
    """Place foot points against the ego track, range them, and grade their risk.

    Args:
        fit: Rails fitted on the image, ego pair marked.
        foot_u: Foot point columns in px, ``(N,)``.
        foot_v: Foot point rows in px, ``(N,)``.
        types: Class names, ``(N,)``.
        speed_mps: Speeds in m/s, ``(N,)`` or one value for all.
        config: Camera (focal length), gauge and risk settings.

    Returns:
        A :class:`GradedObjects`.

    Raises:
        InputError: unknown type, foot point outside the image, negative speed.
        GeometryError: no ego track in ``fit``.
    """
    config = config or IntrusionConfig()
    u = np.atleast_1d(np.asarray(foot_u, dtype=float))
    v = np.atleast_1d(np.asarray(foot_v, dtype=float))
    names = np.array([canonical_type(t, config.risk) for t in np.atleast_1d(np.asarray(types)).tolist()])
    speed = np.broadcast_to(np.asarray(speed_mps, dtype=float), u.shape).copy()
    position = lateral_position(u, v, fit, config.gauge, config.railfit.row_tolerance_px)
    placed = position.valid
    distance = np.full(u.shape, np.nan)
    distance[placed] = gauge_distance_m(position.gauge_px[placed], config.camera.focal_px, config.gauge)
    risk = assess_risk(
        position.offset_mm[placed],
        distance[placed],
        names[placed],
        speed[placed],
        risk=config.risk,
        gauge=config.gauge,
    )
    return GradedObjects(
        types=names,
        foot_u=u,
        foot_v=v,
        speed_mps=speed,
        position=position,
        distance_m=distance,
        placed=placed,
        risk=risk,
    )
