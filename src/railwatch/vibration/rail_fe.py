"""Finite elements of a rail on discrete fastener springs, its modes and its modal response.

Written by hand: no library offers a beam-on-discrete-supports model of a hammer test (general FE
packages would need a mesh, a solver set-up and far more time per event than the few milliseconds
this takes). The model follows paper 001, section "Mechanical foundation for rail fastener clip
failure detection": the rail is an Euler-Bernoulli beam and each fastener a spring whose stiffness
k falls when its clip is loose, lowering the rail's natural frequencies.

One bending plane at a time: Hermite cubic elements with two degrees of freedom per node,
ordered ``[w_0, theta_0, w_1, theta_1, ...]`` (deflection and its slope), the consistent mass
matrix, free ends, translational springs anywhere along the rail (lumped onto the element's
degrees of freedom through the shape functions, exact at nodes).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg


def element_matrices(length: float, ei: float, mass_per_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Stiffness and consistent mass (4 x 4) of one Hermite beam element of ``length`` m."""
    le = length
    k = (ei / le**3) * np.array(
        [
            [12, 6 * le, -12, 6 * le],
            [6 * le, 4 * le**2, -6 * le, 2 * le**2],
            [-12, -6 * le, 12, -6 * le],
            [6 * le, 2 * le**2, -6 * le, 4 * le**2],
        ]
    )
    m = (mass_per_m * le / 420.0) * np.array(
        [
            [156, 22 * le, 54, -13 * le],
            [22 * le, 4 * le**2, 13 * le, -3 * le**2],
            [54, 13 * le, 156, -22 * le],
            [-13 * le, -3 * le**2, -22 * le, 4 * le**2],
        ]
    )
    return k, m


def beam_matrices(n_elements: int, element_length: float, ei: float, mass_per_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Assembled stiffness and mass of a free-free beam of ``n_elements`` equal elements."""
    n_dof = 2 * (n_elements + 1)
    k_e, m_e = element_matrices(element_length, ei, mass_per_m)
    stiffness = np.zeros((n_dof, n_dof))
    mass = np.zeros((n_dof, n_dof))
    for e in range(n_elements):
        dofs = slice(2 * e, 2 * e + 4)
        stiffness[dofs, dofs] += k_e
        mass[dofs, dofs] += m_e
    return stiffness, mass


def point_rows(x: float, n_elements: int, element_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows that map the degrees of freedom to the deflection and the slope at ``x`` m from the left end."""
    e = min(int(np.floor(x / element_length + 1e-9)), n_elements - 1)
    xi = x / element_length - e
    le = element_length
    shape = np.array([1 - 3 * xi**2 + 2 * xi**3, le * (xi - 2 * xi**2 + xi**3), 3 * xi**2 - 2 * xi**3, le * (xi**3 - xi**2)])
    slope = np.array([(6 * xi**2 - 6 * xi) / le, 1 - 4 * xi + 3 * xi**2, (6 * xi - 6 * xi**2) / le, 3 * xi**2 - 2 * xi])
    n_dof = 2 * (n_elements + 1)
    deflection_row, slope_row = np.zeros(n_dof), np.zeros(n_dof)
    deflection_row[2 * e : 2 * e + 4] = shape
    slope_row[2 * e : 2 * e + 4] = slope
    return deflection_row, slope_row


def with_springs(stiffness: np.ndarray, rows: np.ndarray, springs: np.ndarray) -> np.ndarray:
    """``stiffness`` plus a translational spring ``springs[j]`` (N/m) at the point whose deflection row is ``rows[j]``."""
    return stiffness + (rows.T * springs) @ rows


def modes(stiffness: np.ndarray, mass: np.ndarray, max_freq_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Natural frequencies (Hz, ascending) below ``max_freq_hz`` and their mass-normalised shapes (dof x mode)."""
    omega_max = 2 * np.pi * max_freq_hz
    eigenvalues, shapes = scipy.linalg.eigh(stiffness, mass, subset_by_value=(-np.inf, omega_max**2), driver="gvx")
    return np.sqrt(np.maximum(eigenvalues, 0.0)) / (2 * np.pi), shapes


def modal_receptance(
    out_modal: np.ndarray, in_modal: np.ndarray, freqs_hz: np.ndarray, damping: np.ndarray, omega: np.ndarray
) -> np.ndarray:
    """Displacement per unit force, ``(outputs, len(omega))``, by modal superposition.

    ``H(w) = sum_r phi_r(out) phi_r(in) / (w_r^2 - w^2 + 2 i zeta_r w_r w)`` with mass-normalised
    modes; ``out_modal`` is ``(outputs, modes)`` (the output rows times the shapes), ``in_modal``
    ``(modes,)`` and ``damping`` the modal damping ratios.
    """
    omega_r = 2 * np.pi * freqs_hz[:, None]
    denominator = omega_r**2 - omega[None, :] ** 2 + 2j * damping[:, None] * omega_r * omega[None, :]
    return out_modal @ (in_modal[:, None] / denominator)


def modal_damping(freqs: np.ndarray, zeta: float, rise: float) -> np.ndarray:
    """Modal damping ratios: ``zeta`` for the first mode, rising as ``(f / f_first)^rise`` (at most 1).

    Above its first mode the real, long rail carries waves away from the struck section; the
    short simulated rail with free ends reflects them into standing modes instead, so these modes
    get the energy loss of that radiation as extra damping.
    """
    return np.minimum(zeta * (freqs / freqs[0]) ** rise, 1.0)


def half_sine_spectrum(omega: np.ndarray, duration: float, peak: float, start: float) -> np.ndarray:
    """Fourier transform of a half-sine pulse of ``duration`` s and ``peak`` N starting at ``start`` s."""
    a = np.pi / duration
    gap = a**2 - omega**2
    near = np.abs(gap) < 1e-9 * a**2
    shape = np.where(near, duration / 2, 2 * a * np.cos(omega * duration / 2) / np.where(near, 1.0, gap))
    return peak * shape * np.exp(-1j * omega * (start + duration / 2))
