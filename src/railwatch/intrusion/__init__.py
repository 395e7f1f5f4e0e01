"""Intrusion: track geometry, object position and graded risk (paper 003).

Example:
    >>> import numpy as np
    >>> from railwatch.intrusion import fit_rails, lateral_position, assess_risk
    >>> mask = np.zeros((200, 300), dtype=bool)
    >>> mask[:, 95:100] = mask[:, 200:205] = True
    >>> fit = fit_rails(mask)
    >>> pos = lateral_position(149.5, 150, fit)
    >>> round(float(pos.offset_mm), 1)
    0.0
"""

from railwatch.intrusion.geometry import LateralPosition, gauge_distance_m, lateral_position
from railwatch.intrusion.railfit import Rail, RailFit, fit_rails
from railwatch.intrusion.risk import (
    RiskAssessment,
    RiskLevel,
    assess_risk,
    risk_level,
    risk_zone,
    speed_factor,
    type_weight,
    x_risk,
    y_risk,
)

__all__ = [
    "LateralPosition",
    "Rail",
    "RailFit",
    "RiskAssessment",
    "RiskLevel",
    "assess_risk",
    "fit_rails",
    "gauge_distance_m",
    "lateral_position",
    "risk_level",
    "risk_zone",
    "speed_factor",
    "type_weight",
    "x_risk",
    "y_risk",
]
