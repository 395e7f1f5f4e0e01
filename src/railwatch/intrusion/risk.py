"""Intrusion risk quantification (paper 003, section 2.3.2, Eq. 15-17, Tables 2-4).

Pure numpy, vectorised over any number of objects::

    Z = x_risk(d_x) * y_risk(d_y) * W_type * f_speed          (Eq. 17)

graded into levels I (Z >= 1.2, emergency braking) to V (Z < 0.2, event log only).
The readings of the damaged formulas follow the project's design notes:

- ``x_risk = 1 - 0.3 d_x / 717.5`` inside the rails, ``0.5 (1 - (d_x - 717.5) / 2440)`` out to
  the clearance edge at 3157.5 mm, 0 beyond (Eq. 15, Table 2);
- ``y_risk = 1.5 exp(-0.5 d_y / 1000)`` up to 20 m, ``exp(-0.2 d_y / 100)`` beyond (Eq. 16);
- ``f_speed = 1 + v / 10`` (paper: 0 for stationary objects, kept as an option).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from railwatch.config import GaugeConfig, RiskConfig
from railwatch.errors import InputError

TYPE_ALIASES: dict[str, str] = {"rock": "stone", "pedestrian": "person", "vehicle": "car"}
"""Other names accepted for the four classes."""

ZONE_NAMES: tuple[str, ...] = ("high", "medium", "safe")
"""Risk zones of Table 2, by zone code 0, 1, 2."""


class RiskLevel(IntEnum):
    """The five risk grades of Table 4, with the action each one calls for."""

    I = 1  # noqa: E741 - the paper's name for the level
    II = 2
    III = 3
    IV = 4
    V = 5

    @property
    def label(self) -> str:
        """Short description of the grade (Table 4)."""
        return _LEVEL_LABELS[self]

    @property
    def action(self) -> str:
        """Mitigation the grade calls for (Table 4)."""
        return _LEVEL_ACTIONS[self]


_LEVEL_LABELS = {
    RiskLevel.I: "extremely high risk",
    RiskLevel.II: "high risk",
    RiskLevel.III: "elevated risk",
    RiskLevel.IV: "managed risk",
    RiskLevel.V: "controlled risk",
}
_LEVEL_ACTIONS = {
    RiskLevel.I: "emergency braking",
    RiskLevel.II: "automatic speed restriction",
    RiskLevel.III: "audible and visual warning, brake pre-activation",
    RiskLevel.IV: "HUD warning",
    RiskLevel.V: "event log only",
}


def _as_float_array(name: str, value: Any, minimum: float | None = None) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if np.isnan(array).any():
        raise InputError(f"{name} contains NaN")
    if minimum is not None and (array < minimum).any():
        worst = float(array.min())
        raise InputError(f"{name} must be >= {minimum:g}, got {worst:g}")
    return array


def x_risk(d_x_mm: np.ndarray | float, gauge: GaugeConfig | None = None) -> np.ndarray:
    """Lateral position risk coefficient ``x_risk`` (Eq. 15).

    Args:
        d_x_mm: Lateral distance of the object from the track centre, in mm, >= 0 (any shape).
            Infinite distances are allowed and give 0.
        gauge: Gauge and clearance; defaults give the zone edges 717.5 mm and 3157.5 mm.

    Returns:
        ``x_risk`` in [0, 1], same shape as ``d_x_mm``: 1 at the centre falling to 0.7 at the
        rails, 0.5 just outside them falling to 0 at the clearance edge, 0 beyond.
    """
    gauge = gauge or GaugeConfig()
    d = _as_float_array("lateral distance (mm)", d_x_mm, minimum=0.0)
    half, edge = gauge.half_gauge_mm, gauge.clearance_edge_mm
    inside = 1.0 - 0.3 * d / half
    with np.errstate(invalid="ignore"):  # inf - inf in the branches never selected
        outside = 0.5 * (1.0 - (d - half) / (edge - half))
    return np.select([d <= half, d <= edge], [inside, outside], default=0.0)


def risk_zone(d_x_mm: np.ndarray | float, gauge: GaugeConfig | None = None) -> np.ndarray:
    """Zone code of Table 2: 0 high (between the rails), 1 medium (to the clearance edge), 2 safe.

    Args:
        d_x_mm: Lateral distance from the track centre in mm, >= 0.
        gauge: Gauge and clearance settings.

    Returns:
        Integer array of zone codes; names are in :data:`ZONE_NAMES`.
    """
    gauge = gauge or GaugeConfig()
    d = _as_float_array("lateral distance (mm)", d_x_mm, minimum=0.0)
    return np.select([d <= gauge.half_gauge_mm, d <= gauge.clearance_edge_mm], [0, 1], default=2)


def y_risk(d_y_m: np.ndarray | float) -> np.ndarray:
    """Longitudinal distance risk coefficient ``y_risk`` (Eq. 16).

    Args:
        d_y_m: Distance of the object ahead of the camera, in metres, >= 0.

    Returns:
        ``1.5 exp(-0.5 d_y / 1000)`` for ``d_y <= 20`` and ``exp(-0.2 d_y / 100)`` beyond:
        1.49 at 20 m, 0.94 at 30 m, 0.87 at 70 m, 0.82 at 100 m (Table 10).
    """
    d = _as_float_array("distance (m)", d_y_m, minimum=0.0)
    return np.where(d <= 20.0, 1.5 * np.exp(-0.5 * d / 1000.0), np.exp(-0.2 * d / 100.0))


def canonical_type(name: str, config: RiskConfig | None = None) -> str:
    """The class name ``name`` stands for (case-insensitive, aliases like ``rock`` allowed).

    Raises:
        InputError: listing the known types when ``name`` is none of them.
    """
    config = config or RiskConfig()
    key = str(name).strip().lower()
    key = TYPE_ALIASES.get(key, key)
    if key not in config.type_weights:
        known = ", ".join(config.type_weights)
        raise InputError(f"unknown object type {name!r}; known types: {known}")
    return key


def type_weight(object_type: Any, config: RiskConfig | None = None) -> np.ndarray:
    """Class weight ``W_type`` (Table 3) for one type name or an array of names.

    Args:
        object_type: A class name or an array-like of names (any shape).
        config: Risk settings holding the weights.

    Returns:
        Float array of weights, same shape as ``object_type``.
    """
    config = config or RiskConfig()
    names = np.asarray(object_type)
    weights = np.full(names.shape, np.nan)
    # one equality pass per known name is linear; np.unique would sort a million strings
    spellings = {**{n: n for n in config.type_weights}, **TYPE_ALIASES}
    for spelling, name in spellings.items():
        if name in config.type_weights:
            weights[names == spelling] = config.type_weights[name]
    rest = np.isnan(weights)
    if rest.any():  # other spellings (case, spaces) or unknown names, which raise
        for name in np.unique(names[rest]).tolist():
            weights[names == name] = config.type_weights[canonical_type(name, config)]
    return weights


def speed_factor(speed_mps: np.ndarray | float, config: RiskConfig | None = None) -> np.ndarray:
    """Dynamic velocity compensation ``f_speed = 1 + v/10`` (Eq. 17).

    Args:
        speed_mps: Object speed over the ground in m/s, >= 0.
        config: With ``stationary_rule="paper"``, speeds below ``stationary_below_mps`` give 0.

    Returns:
        Float array of factors, same shape as ``speed_mps``.
    """
    config = config or RiskConfig()
    v = _as_float_array("speed (m/s)", speed_mps, minimum=0.0)
    factor = 1.0 + v / 10.0
    if config.stationary_rule == "paper":
        factor = np.where(v < config.stationary_below_mps, 0.0, factor)
    return factor


def risk_level(z: np.ndarray | float, config: RiskConfig | None = None) -> np.ndarray:
    """Grade risk values into levels 1 (I) to 5 (V) with the thresholds of Table 4.

    A value on a threshold takes the higher grade: ``Z = 0.8`` is level II.

    Args:
        z: Comprehensive risk values ``Z`` (any shape).
        config: Risk settings holding the thresholds.

    Returns:
        Integer array of levels 1..5, same shape as ``z``; :class:`RiskLevel` names them.
    """
    config = config or RiskConfig()
    z = _as_float_array("risk value Z", z)
    thresholds = np.asarray(config.level_thresholds, dtype=float)
    # number of thresholds Z falls below, + 1: Z >= 1.2 -> 1, ..., Z < 0.2 -> 5
    return 1 + (z[..., None] < thresholds).sum(axis=-1)


@dataclass(frozen=True)
class RiskAssessment:
    """Risk factors of a batch of objects; every field has the batch's shape.

    Attributes:
        offset_mm: Signed lateral offset from the track centre in mm (negative = left).
        distance_m: Distance ahead of the camera in m.
        zone: Zone codes of Table 2 (see :data:`ZONE_NAMES`).
        x_risk: Lateral risk coefficient (Eq. 15).
        y_risk: Longitudinal risk coefficient (Eq. 16).
        weight: Class weight ``W_type`` (Table 3).
        f_speed: Speed factor.
        z: Comprehensive risk value (Eq. 17).
        level: Levels 1..5 (Table 4).
    """

    offset_mm: np.ndarray
    distance_m: np.ndarray
    zone: np.ndarray
    x_risk: np.ndarray
    y_risk: np.ndarray
    weight: np.ndarray
    f_speed: np.ndarray
    z: np.ndarray
    level: np.ndarray

    def level_names(self) -> list[str]:
        """Levels as roman numerals, flattened."""
        return [RiskLevel(int(lv)).name for lv in np.ravel(self.level)]

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per object (flattened order)."""
        columns = {name: np.ravel(getattr(self, name)) for name in self.__dataclass_fields__}
        out = []
        for i in range(columns["z"].size):
            level = RiskLevel(int(columns["level"][i]))
            out.append(
                {
                    "offset_mm": float(columns["offset_mm"][i]),
                    "distance_m": float(columns["distance_m"][i]),
                    "zone": ZONE_NAMES[int(columns["zone"][i])],
                    "x_risk": float(columns["x_risk"][i]),
                    "y_risk": float(columns["y_risk"][i]),
                    "weight": float(columns["weight"][i]),
                    "f_speed": float(columns["f_speed"][i]),
                    "z": float(columns["z"][i]),
                    "level": level.name,
                    "label": level.label,
                    "action": level.action,
                }
            )
        return out


def assess_risk(
    offset_mm: np.ndarray | float,
    distance_m: np.ndarray | float,
    object_type: Any,
    speed_mps: np.ndarray | float = 0.0,
    risk: RiskConfig | None = None,
    gauge: GaugeConfig | None = None,
) -> RiskAssessment:
    """Grade objects by Eq. 17 and Table 4.

    Args:
        offset_mm: Signed lateral offset from the track centre in mm (sign = side).
        distance_m: Distance ahead of the camera in m, >= 0.
        object_type: Class name(s): person, car, animal, stone (or an alias such as rock).
        speed_mps: Speed over the ground in m/s, >= 0.
        risk: Weights, thresholds and the stationary rule.
        gauge: Gauge and clearance for the zones.

    Returns:
        A :class:`RiskAssessment` with all inputs broadcast to one shape.

    Raises:
        InputError: unknown type, negative distance or speed, NaN.

    Example:
        >>> a = assess_risk(-708.7, 20.0, "person", 2.0)  # 8.8 mm inside the left rail
        >>> round(float(a.z), 2), a.level_names()
        (1.38, ['I'])
    """
    risk = risk or RiskConfig()
    gauge = gauge or GaugeConfig()
    offset = _as_float_array("lateral offset (mm)", offset_mm)
    arrays = np.broadcast_arrays(
        offset,
        _as_float_array("distance (m)", distance_m, minimum=0.0),
        np.asarray(object_type),
        _as_float_array("speed (m/s)", speed_mps, minimum=0.0),
    )
    offset, distance, types, speed = arrays
    d_x = np.abs(offset)
    xr, yr = x_risk(d_x, gauge), y_risk(distance)
    weight, f_speed = type_weight(types, risk), speed_factor(speed, risk)
    z = xr * yr * weight * f_speed
    return RiskAssessment(
        offset_mm=offset,
        distance_m=distance,
        zone=risk_zone(d_x, gauge),
        x_risk=xr,
        y_risk=yr,
        weight=weight,
        f_speed=f_speed,
        z=z,
        level=risk_level(z, risk),
    )
