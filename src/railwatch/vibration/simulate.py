"""Simulated hammer tests on a rail with loose fastener clips: accelerometers and DAS (paper 001).

Written by hand (see :mod:`railwatch.vibration.rail_fe`): no library simulates this test. A UIC60
rail lies on ``n_supports`` fastener springs; a loose clip lowers its spring's stiffness
("a reduction in the spring stiffness k, which further leads to decreases in the natural
frequency", section "Mechanical foundation for rail fastener clip failure detection"). A hammer
strikes the rail between fasteners #a and #b (section "Experimental setup"). The response, by
modal superposition in the frequency domain, reproduces section "Experimental results": the
vertical acceleration peaks near 265 Hz and the lateral near 112 Hz with every clip tight,
falling to about 230 Hz and 102 Hz with three loose clips (C6).

Five three-axis accelerometers and six DAS sensing points (SP-A..SP-F) record each blow. A DAS
point is the gauge-length average of the axial strain rate of a fibre taped to the rail foot,
seen through the fibre's coupling (a resonance near 50 Hz, "related to the installation method of
the fiber-optic cable"), high-frequency attenuation, mains hum and ambient noise much larger
than the accelerometers'. At the training site the coupling resonance also shifts with every
loose clip (the tape sits at the clips): a site artefact, not rail physics, that does not carry
to another site, like the 40-70 Hz cue the paper's DAS model learned (section "Performance based on
individual data source", Figures 14 and 15).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft

from railwatch.config import HammerConfig, SiteConfig
from railwatch.errors import InputError
from railwatch.vibration import rail_fe

CONDITIONS: dict[int, tuple[str, ...]] = {1: (), 2: ("a",), 3: ("b",), 4: ("a", "b"), 5: ("a", "c"), 6: ("a", "b", "c")}
"""The paper's six conditions: the loose clips of each (#a left and #b right of the hammer, #c beyond #b)."""

PLANES: tuple[str, ...] = ("vertical", "lateral")
PINK_SHARE = 0.3  # share of the DAS ambient noise variance that is 1/f ("pink"); the rest is white
PINK_KNEE_HZ = 10.0  # the pink noise's power density is flat below this frequency
MODE_LIMIT = 1.5  # modes are kept up to this many times the Nyquist frequency


def condition_ffi(condition: int) -> int:
    """Fastener failure index of a condition: its number of loose clips (C1: 0 ... C6: 3)."""
    if condition not in CONDITIONS:
        raise InputError(f"unknown condition {condition!r}; known: {', '.join(map(str, CONDITIONS))}")
    return len(CONDITIONS[condition])


SITES: dict[str, SiteConfig] = {
    "training": SiteConfig(name="training"),
    "other": SiteConfig(
        name="other",
        accel_noise=0.003,
        das_noise=0.25,
        hum_amplitude=0.1,
        coupling_gain=0.5,
        coupling_freq=72.0,
        coupling_q=8.0,
        coupling_resonance=60.0,
        coupling_shift_per_loose_hz=-1.0,
        hf_cutoff=220.0,
    ),
}
"""Known sites: ``training`` (where the paper's data came from) and ``other`` (noisier, another coupling)."""


@dataclass
class HammerDataset:
    """Hammer-test events: records, their condition and FFI.

    ``accel`` is ``(events, 5 sensors, 3 axes x/y/z, samples)``, or ``None`` for a DAS-only data
    set; ``das`` is ``(events, 6 sensing points, samples)``.
    """

    accel: np.ndarray | None
    das: np.ndarray
    ffi: np.ndarray
    condition: np.ndarray
    fs: float
    site: str

    def __len__(self) -> int:
        return int(self.das.shape[0])

    def subset(self, index: np.ndarray) -> HammerDataset:
        """The events at ``index`` (integer indices or a boolean mask)."""
        accel = None if self.accel is None else self.accel[index]
        return HammerDataset(accel, self.das[index], self.ffi[index], self.condition[index], self.fs, self.site)


@dataclass(frozen=True)
class _Plane:
    """One bending plane of the rail: beam matrices, support rows, and the hammer's load row."""

    stiffness: np.ndarray
    mass: np.ndarray
    supports: np.ndarray
    hammer: np.ndarray
    tight_k: float
    loose_factor: float


@lru_cache(maxsize=8)
def _plane(config: HammerConfig, plane: str) -> _Plane:
    if plane not in PLANES:
        raise InputError(f"unknown plane {plane!r}; use vertical or lateral")
    vertical = plane == "vertical"
    n_elements = round(config.rail_length / config.element_length)
    ei = config.youngs_modulus * (config.i_vertical if vertical else config.i_lateral)
    stiffness, mass = rail_fe.beam_matrices(n_elements, config.element_length, ei, config.mass_per_m)
    supports = np.stack([rail_fe.point_rows(x, n_elements, config.element_length)[0] for x in config.support_positions])
    hammer = rail_fe.point_rows(config.impact_position, n_elements, config.element_length)[0]
    return _Plane(
        stiffness,
        mass,
        supports,
        hammer,
        config.k_vertical if vertical else config.k_lateral,
        config.loose_factor_vertical if vertical else config.loose_factor_lateral,
    )


def _springs(
    config: HammerConfig, plane: _Plane, condition: int, scatter: np.ndarray, severity: np.ndarray | None = None
) -> np.ndarray:
    """Each fastener's stiffness in one plane (N/m) under ``condition``, times ``scatter``.

    ``severity`` scales each loose clip's loose factor (how loose it is; capped at tight).
    """
    condition_ffi(condition)
    springs = np.full(config.n_supports, plane.tight_k) * scatter
    for i, clip in enumerate(CONDITIONS[condition]):
        springs[config.clips[clip]] *= min(1.0, plane.loose_factor * (1.0 if severity is None else severity[i]))
    return springs


def _modes(config: HammerConfig, plane: _Plane, springs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stiffness = rail_fe.with_springs(plane.stiffness, plane.supports, springs)
    return rail_fe.modes(stiffness, plane.mass, MODE_LIMIT * config.fs / 2)


def rail_modes(config: HammerConfig, condition: int, plane: str) -> np.ndarray:
    """Natural frequencies (Hz, ascending, below 1.5 x Nyquist) of one plane under ``condition``, no scatter.

    The lowest is the rail's first natural frequency: about 265 Hz vertical and 112 Hz lateral
    with every clip tight (section "Experimental results"), lower with every loose clip.
    """
    rail = _plane(config, plane)
    return _modes(config, rail, _springs(config, rail, condition, np.ones(config.n_supports)))[0]


def _das_transfer(site: SiteConfig, freqs: np.ndarray, ffi: int) -> np.ndarray:
    """The DAS chain ``gain (1 + resonance R(f)) L(f)``: coupling resonance (band-pass, 1 at its peak) and HF attenuation."""
    centre = max(site.coupling_freq + site.coupling_shift_per_loose_hz * ffi, 1.0)
    ratio = freqs / centre
    band = (1j * ratio / site.coupling_q) / (1 - ratio**2 + 1j * ratio / site.coupling_q)
    attenuation = 1.0 / np.sqrt(1 + (freqs / site.hf_cutoff) ** (2 * site.hf_order))
    return site.coupling_gain * (1 + site.coupling_resonance * band) * attenuation


def _pink(rng: np.random.Generator, shape: tuple[int, ...], fs: float) -> np.ndarray:
    """Gaussian noise with a 1/f power spectrum above :data:`PINK_KNEE_HZ`, unit std per channel."""
    spectrum = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    f = np.fft.rfftfreq(shape[-1], 1 / fs)
    spectrum *= np.where(f > 0, 1 / np.sqrt(np.maximum(f, PINK_KNEE_HZ)), 0.0)
    noise = np.fft.irfft(spectrum, n=shape[-1], axis=-1)
    return noise / noise.std(axis=-1, keepdims=True)


def _check_das_layout(config: HammerConfig, site: SiteConfig) -> np.ndarray:
    """Both gauge ends of every sensing point, from the rail's left end, ``(2, points)``."""
    centres = config.impact_position + np.asarray(config.das_positions)
    ends = np.stack([centres - site.gauge_length / 2, centres + site.gauge_length / 2])
    if ends.min() < 0 or ends.max() > config.rail_length:
        raise InputError(
            f"site {site.name!r}: a {site.gauge_length:g} m gauge at {config.das_positions} m from the impact "
            f"runs off the {config.rail_length:g} m rail"
        )
    return ends


def _output_rows(config: HammerConfig, site: SiteConfig) -> np.ndarray:
    """Rows for the outputs of either plane: deflection and slope at each accelerometer, slope at each gauge end."""
    n_elements = round(config.rail_length / config.element_length)
    accel = [rail_fe.point_rows(config.impact_position + x, n_elements, config.element_length) for x in config.accel_positions]
    ends = _check_das_layout(config, site).ravel()
    gauge = [rail_fe.point_rows(x, n_elements, config.element_length)[1] for x in ends]
    return np.stack([r[0] for r in accel] + [r[1] for r in accel] + gauge)


def _plane_response(
    config: HammerConfig,
    plane: str,
    condition: int,
    rows: np.ndarray,
    omega: np.ndarray,
    force: np.ndarray,
    zeta: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Displacements and slopes at ``rows``, ``(outputs, len(omega))``, for one event in one plane."""
    rail = _plane(config, plane)
    drift = rng.normal(1.0, config.stiffness_drift)  # every pad at once: temperature, ageing
    scatter = np.maximum(drift * rng.normal(1.0, config.stiffness_scatter, config.n_supports), 0.2)
    severity = rng.uniform(1.0 - config.loose_spread, 1.0 + config.loose_spread, len(CONDITIONS[condition]))
    freqs, shapes = _modes(config, rail, _springs(config, rail, condition, scatter, severity))
    damping = rail_fe.modal_damping(freqs, zeta, config.damping_rise)
    receptance = rail_fe.modal_receptance(rows @ shapes, rail.hammer @ shapes, freqs, damping, omega)
    return receptance * force


def _accelerometers(config: HammerConfig, vertical: np.ndarray, lateral: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """Acceleration spectra ``(sensors, 3, freqs)``: x from the section's rotations at the sensor's height, y, z."""
    n = len(config.accel_positions)
    x = -config.accel_height * vertical[n : 2 * n] - config.accel_offset * lateral[n : 2 * n]
    return -(omega**2) * np.stack([x, lateral[:n], vertical[:n]], axis=1)


def _das(
    config: HammerConfig, site: SiteConfig, vertical: np.ndarray, lateral: np.ndarray, omega: np.ndarray, ffi: int
) -> np.ndarray:
    """DAS spectra ``(points, freqs)``: gauge-averaged strain rate of the fibre on the foot, through the DAS chain.

    Strain at the fibre is ``-z_f w'' - y_f v''`` (``z_f`` = minus the neutral axis height); its
    average over a gauge is exact from the slopes at the gauge's two ends.
    """
    n_acc, n_das = len(config.accel_positions), len(config.das_positions)
    ends_v, ends_l = (plane[2 * n_acc :].reshape(2, n_das, -1) for plane in (vertical, lateral))
    strain = (config.neutral_axis * (ends_v[1] - ends_v[0]) - config.fibre_offset * (ends_l[1] - ends_l[0])) / site.gauge_length
    return 1j * omega * strain * _das_transfer(site, omega / (2 * np.pi), ffi)


def _das_noise(das: np.ndarray, site: SiteConfig, fs: float, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (one phase for all points) and white + 1/f ambient noise, scaled to the blow's peak |DAS|."""
    t = np.arange(das.shape[-1]) / fs
    hum = site.hum_amplitude * np.sin(2 * np.pi * site.hum_freq * t + rng.uniform(0, 2 * np.pi))
    ambient = np.sqrt(1 - PINK_SHARE) * rng.standard_normal(das.shape) + np.sqrt(PINK_SHARE) * _pink(rng, das.shape, fs)
    return np.abs(das).max() * (hum + site.das_noise * ambient)


def simulate_event(
    config: HammerConfig, site: SiteConfig, condition: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One hammer blow under ``condition``: accelerations ``(5, 3, samples)`` (x, y, z in m/s^2) and DAS ``(6, samples)``.

    Per event and plane: each fastener's stiffness scatters by ``stiffness_scatter``, all of them
    together by ``stiffness_drift``, and each loose clip's loose factor by ``loose_spread``. Per
    event: the damping ratio, the half-sine pulse's duration and peak force, its lateral share (the
    vertical plane gets the rest) and the impact time (in the second half of the pre-trigger) are
    drawn from their ranges.
    The response is computed on the rfft grid of a record zero-padded to at least twice its
    length (so the decaying response does not wrap round), then cropped.
    """
    n = round(config.duration_s * config.fs)
    n_fft = scipy.fft.next_fast_len(2 * n)
    omega = 2 * np.pi * np.fft.rfftfreq(n_fft, 1 / config.fs)
    zeta = rng.uniform(*config.damping)
    force = 1e3 * rng.uniform(*config.force_kn)
    share = rng.uniform(*config.lateral_share)
    duration, start = 1e-3 * rng.uniform(*config.impact_ms), config.pre_trigger_s * rng.uniform(0.5, 1.0)
    pulse = rail_fe.half_sine_spectrum(omega, duration, force, start)
    rows = _output_rows(config, site)
    vertical = _plane_response(config, "vertical", condition, rows, omega, (1 - share) * pulse, zeta, rng)
    lateral = _plane_response(config, "lateral", condition, rows, omega, share * pulse, zeta, rng)

    def to_time(spectra: np.ndarray) -> np.ndarray:
        return np.fft.irfft(spectra, n=n_fft, axis=-1)[..., :n] * config.fs  # continuous-time inverse transform, cropped

    accel = to_time(_accelerometers(config, vertical, lateral, omega))
    das = to_time(_das(config, site, vertical, lateral, omega, condition_ffi(condition)))
    accel += site.accel_noise * np.abs(accel).max() * rng.standard_normal(accel.shape)
    das += _das_noise(das, site, config.fs, rng)
    return accel.astype(np.float32), das.astype(np.float32)


def resolve_site(site: SiteConfig | str) -> SiteConfig:
    """A site's settings, by name from :data:`SITES` or as given."""
    if isinstance(site, SiteConfig):
        return site
    if site not in SITES:
        raise InputError(f"unknown site {site!r}; known sites: {', '.join(SITES)}")
    return SITES[site]


def simulate_hammer_tests(
    config: HammerConfig | None = None,
    site: SiteConfig | str = "training",
    repeats: int = 50,
    seed: int = 0,
    conditions: tuple[int, ...] = (1, 2, 3, 4, 5, 6),
    progress: bool = False,
) -> HammerDataset:
    """``repeats`` blows per condition, condition by condition, deterministic for ``seed``.

    Event ``r`` of condition ``c`` draws from its own generator seeded by ``(seed, c, r)``, so it
    is the same whatever ``repeats`` or ``conditions`` are.
    """
    config = config or HammerConfig()
    site = resolve_site(site)
    if repeats < 1 or seed < 0:
        raise InputError(f"repeats must be at least 1 and the seed at least 0, got {repeats} and {seed}")
    for c in conditions:
        condition_ffi(c)
    plan = [(c, r) for c in conditions for r in range(repeats)]
    if progress:
        from rich.progress import track

        plan = track(plan, description=f"simulating {len(plan)} hammer blows")
    events = [simulate_event(config, site, c, np.random.default_rng([seed, c, r])) for c, r in plan]
    labels = np.repeat(np.asarray(conditions, dtype=np.int64), repeats)
    return HammerDataset(
        accel=np.stack([e[0] for e in events]),
        das=np.stack([e[1] for e in events]),
        ffi=np.array([condition_ffi(int(c)) for c in labels], dtype=np.int64),
        condition=labels,
        fs=float(config.fs),
        site=site.name,
    )
