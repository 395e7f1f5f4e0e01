"""Risk engine against the paper's formulas (Eq. 15-17), tables (2-4) and worked cases (Table 10)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from railwatch.config import GaugeConfig, RiskConfig
from railwatch.errors import InputError
from railwatch.intrusion.risk import (
    RiskLevel,
    assess_risk,
    canonical_type,
    risk_level,
    risk_zone,
    speed_factor,
    type_weight,
    x_risk,
    y_risk,
)


class TestLateralRisk:
    def test_zone_edges(self):
        # Eq. 15: 1 at the centre, 0.7 at the rail, 0.5 just outside, 0 at the clearance edge.
        values = x_risk([0.0, 717.5, 717.5 + 1e-9, 3157.5, 3157.5 + 1e-9, 1e6])
        np.testing.assert_allclose(values, [1.0, 0.7, 0.5, 0.0, 0.0, 0.0], atol=1e-9)

    def test_zones_of_table_2(self):
        assert risk_zone([0, 717.5, 717.6, 3157.5, 3157.6]).tolist() == [0, 0, 1, 1, 2]

    def test_inside_is_linear(self):
        assert float(x_risk(358.75)) == pytest.approx(0.85)

    def test_gauge_setting_moves_edges(self):
        narrow = GaugeConfig(gauge_mm=1000.0)
        assert float(x_risk(500.0, narrow)) == pytest.approx(0.7)
        assert float(x_risk(500.0 + 2440.0, narrow)) == pytest.approx(0.0)

    def test_infinite_distance_is_no_risk(self):
        assert float(x_risk(math.inf)) == 0.0

    @given(st.floats(0, 717.5), st.floats(0, 717.5))
    def test_monotone_inside_rails(self, a, b):
        lo, hi = sorted((a, b))
        assert float(x_risk(lo)) >= float(x_risk(hi))

    @given(st.floats(717.5, 5000, exclude_min=True), st.floats(717.5, 5000, exclude_min=True))
    def test_monotone_outside_rails(self, a, b):
        lo, hi = sorted((a, b))
        assert float(x_risk(lo)) >= float(x_risk(hi))


class TestLongitudinalRisk:
    def test_table_10_values(self):
        # The paper's y_risk at 20, 30, 70 and 100 m.
        np.testing.assert_allclose(y_risk([20, 30, 70, 100]), [1.49, 0.94, 0.87, 0.82], atol=0.006)

    def test_piece_boundary(self):
        assert float(y_risk(20.0)) == pytest.approx(1.5 * math.exp(-0.01))
        assert float(y_risk(20.0 + 1e-9)) == pytest.approx(math.exp(-0.04))

    @given(st.floats(0, 1000), st.floats(0, 1000))
    def test_monotone_in_distance(self, a, b):
        near, far = sorted((a, b))
        assert float(y_risk(near)) >= float(y_risk(far))


class TestFactors:
    def test_type_weights_of_table_3(self):
        assert type_weight(["person", "car", "animal", "stone"]).tolist() == [1.1, 1.2, 0.9, 0.7]

    def test_aliases_and_case(self):
        assert canonical_type("Rock") == "stone"
        assert canonical_type("PEDESTRIAN") == "person"

    def test_unknown_type_lists_known(self):
        with pytest.raises(InputError, match="known types: person, car, animal, stone"):
            type_weight(["person", "dog"])

    def test_speed_factor(self):
        np.testing.assert_allclose(speed_factor([0.0, 2.0, 10.0]), [1.0, 1.2, 2.0])

    def test_paper_stationary_rule(self):
        paper = RiskConfig(stationary_rule="paper")
        np.testing.assert_allclose(speed_factor([0.0, 0.05, 2.0], paper), [0.0, 0.0, 1.2])

    def test_rock_on_rail_still_counts_by_default(self):
        still = assess_risk(0.0, 15.0, "stone", 0.0)
        assert still.level_names() == ["II"]
        assert assess_risk(0.0, 15.0, "stone", 0.0, risk=RiskConfig(stationary_rule="paper")).level_names() == ["V"]

    @pytest.mark.parametrize("bad", [{"speed_mps": -1.0}, {"distance_m": -0.1}, {"offset_mm": math.nan}])
    def test_bad_numbers(self, bad):
        args = {"offset_mm": 0.0, "distance_m": 10.0, "object_type": "person", "speed_mps": 0.0} | bad
        with pytest.raises(InputError):
            assess_risk(**args)


class TestLevels:
    def test_level_edges_of_table_4(self):
        z = [1.2, 1.1999, 0.8, 0.7999, 0.5, 0.4999, 0.2, 0.1999, 0.0, 5.0]
        assert risk_level(z).tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 1]

    def test_actions(self):
        assert RiskLevel.I.action == "emergency braking"
        assert RiskLevel.V.action == "event log only"

    def test_thresholds_must_descend(self):
        with pytest.raises(ValueError):
            RiskConfig(level_thresholds=(0.8, 1.2, 0.5, 0.2))


# Table 10 of the paper: persons walking at 2 m/s; offset from the track centre follows from the
# distance to the named rail (inside the rails when x_risk >= 0.7, outside otherwise).
TABLE_10 = [
    # (offset_mm, distance_m, paper x_risk, paper y_risk, paper Z, paper level)
    (717.5 + 120.7, 20, 0.48, 1.49, 0.95, "II"),  # 120.7 mm outside the left rail
    (717.5 - 8.8, 20, 0.71, 1.49, 1.39, "I"),  # 8.8 mm inside the left rail
    (717.5 + 153.0, 20, 0.47, 1.49, 0.92, "II"),  # 153 mm outside the right rail
    (717.5 - 189.0, 30, 0.78, 0.94, 0.98, "II"),  # 189 mm inside the right rail
    (717.5 - 332.0, 70, 0.84, 0.87, 0.97, "II"),  # 332 mm inside the left rail
    (717.5 - 128.0, 100, 0.76, 0.82, 0.83, "II"),  # printed 1280 mm; 128.0 mm fits x_risk 0.76
]


@pytest.mark.parametrize("offset, distance, xr, yr, z, level", TABLE_10)
def test_paper_table_10(offset, distance, xr, yr, z, level):
    result = assess_risk(offset, distance, "person", 2.0)
    assert float(result.x_risk) == pytest.approx(xr, abs=0.011)
    assert float(result.y_risk) == pytest.approx(yr, abs=0.006)
    assert float(result.z) == pytest.approx(z, abs=0.025)
    assert result.level_names() == [level]


def test_table_10_row_with_inconsistent_z():
    # Person2 of Figure 16b, 241 mm outside the right rail: the paper prints x_risk 0.45,
    # y_risk 0.94 and Z 0.71, but 0.45 * 0.94 * 1.1 * 1.2 = 0.56. The factors and level III hold.
    result = assess_risk(717.5 + 241.0, 30, "person", 2.0)
    assert float(result.x_risk) == pytest.approx(0.45, abs=0.01)
    assert float(result.z) == pytest.approx(0.56, abs=0.01)
    assert result.level_names() == ["III"]


def test_vectorised_shapes_and_records():
    offsets = np.linspace(-4000, 4000, 12).reshape(3, 4)
    result = assess_risk(offsets, 25.0, "car", 1.0)
    assert result.z.shape == (3, 4) and result.level.shape == (3, 4)
    records = result.records()
    assert len(records) == 12
    assert set(records[0]) >= {"x_risk", "y_risk", "weight", "f_speed", "z", "level", "action"}
    np.testing.assert_allclose(result.z, result.x_risk * result.y_risk * 1.2 * 1.1)
