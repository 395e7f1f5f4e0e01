"""Rail lines from a binary rail mask (paper 003, section 2.1, Eq. 1-4, Figure 5).

The mask is cut into horizontal bands. Starting from the bottom, each rail is followed upward
by a sliding window placed where its last bands predict it; the rail pixels inside the window
give one candidate point per image row (the row's centroid). Bands with no rail nearby start
new rails, so rails that enter from the image sides (neighbouring tracks) are found too. Each
rail's points are fitted by least squares with a cubic ``x = a0 + a1 y + a2 y^2 + a3 y^3``
(Eq. 1), once, then again without the points far from the first fit. The two rails that
straddle the camera's column nearest the camera are the ego track; with the perspective curve
they are then fitted together (:func:`_joint_ego_fit`), so that a stretch one of them hides is
bridged by the shape of both.

Pure numpy: the least-squares solve is ``numpy.linalg.lstsq`` on rows scaled by the image
height, rather than Cramer's rule on the normal equations of Eq. 4, which loses precision with
row powers up to 10^18.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from railwatch.config import RailFitConfig
from railwatch.errors import InputError, NoRailsFoundError


@dataclass(frozen=True)
class Rail:
    """One fitted rail, seen on image rows ``y_min..y_max``.

    Two curves describe it. ``coeffs`` is the paper's cubic (Eq. 1),
    ``x = a0 + a1 y + a2 y^2 + a3 y^3`` in pixels. When a horizon row is known,
    ``perspective_coeffs`` holds ``x = b0 + b1 s + b2 / s + b3 / s^2`` with ``s = y - horizon_row``:
    the exact image of a straight or circular rail on flat ground, which a cubic can only
    approximate (8 px off at 60 m on an 800 m curve). :meth:`x_at` uses the perspective
    curve when there is one.

    Attributes:
        coeffs: ``(4,)`` cubic coefficients ``a0..a3`` (higher ones 0 when a lower degree was fitted).
        y_min: Top row (px) of the rows the rail was seen on (for the ego track's rails fitted
            together, the rows either of them was seen on: the shared curve holds both there).
        y_max: Bottom row (px) of those rows.
        ego: True for the two rails of the track the camera is on.
        n_points: Rows that supported the final fit.
        rms_px: Root-mean-square distance (px) of those points from the curve :meth:`x_at` uses.
        horizon_row: Image row (px) of the horizon, or None.
        perspective_coeffs: ``(4,)`` coefficients ``b0..b3`` of the perspective curve, or None.
    """

    coeffs: np.ndarray
    y_min: int
    y_max: int
    ego: bool = False
    n_points: int = 0
    rms_px: float = 0.0
    horizon_row: float | None = None
    perspective_coeffs: np.ndarray | None = None

    def cubic_x_at(self, y: np.ndarray | float) -> np.ndarray:
        """Column (px) of the rail at rows ``y`` (px) by the paper's cubic (Eq. 1)."""
        return np.polynomial.polynomial.polyval(np.asarray(y, dtype=float), self.coeffs)

    def x_at(self, y: np.ndarray | float) -> np.ndarray:
        """Column (px) of the rail at rows ``y`` (px); NaN on or above the horizon."""
        if self.perspective_coeffs is None or self.horizon_row is None:
            return self.cubic_x_at(y)
        s = np.asarray(y, dtype=float) - self.horizon_row
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(s > 0, s, np.nan)
            return _perspective_design(s) @ self.perspective_coeffs

    def covers(self, y: np.ndarray | float, tolerance_px: float = 0.0) -> np.ndarray:
        """Whether rows ``y`` lie in the rail's row range, widened by ``tolerance_px``."""
        y = np.asarray(y, dtype=float)
        return (y >= self.y_min - tolerance_px) & (y <= self.y_max + tolerance_px)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``coeffs``, ``y_min``, ``y_max``, ``ego``, ``n_points``, ``rms_px``,
        and ``horizon_row`` with ``perspective_coeffs`` when the perspective curve is used."""
        out: dict[str, Any] = {
            "coeffs": [float(c) for c in self.coeffs],
            "y_min": int(self.y_min),
            "y_max": int(self.y_max),
            "ego": bool(self.ego),
            "n_points": int(self.n_points),
            "rms_px": round(float(self.rms_px), 3),
        }
        if self.perspective_coeffs is not None and self.horizon_row is not None:
            out["horizon_row"] = float(self.horizon_row)
            out["perspective_coeffs"] = [float(c) for c in self.perspective_coeffs]
        return out


def _perspective_design(s: np.ndarray) -> np.ndarray:
    """Columns ``1, s, 1/s, 1/s^2`` of the perspective rail curve, ``s`` rows below the horizon."""
    return np.stack([np.ones_like(s), s, 1.0 / s, 1.0 / s**2], axis=-1)


@dataclass(frozen=True)
class RailFit:
    """Every rail found in a mask, left to right at the bottom of each rail.

    Attributes:
        rails: The fitted rails.
        shape: ``(H, W)`` of the mask.
        ego: Indices into ``rails`` of the ego track's left and right rail, or None.
    """

    rails: tuple[Rail, ...]
    shape: tuple[int, int]
    ego: tuple[int, int] | None = None

    @property
    def ego_left(self) -> Rail | None:
        """Left rail of the ego track."""
        return None if self.ego is None else self.rails[self.ego[0]]

    @property
    def ego_right(self) -> Rail | None:
        """Right rail of the ego track."""
        return None if self.ego is None else self.rails[self.ego[1]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with ``rails`` (see :meth:`Rail.to_dict`), ``width`` and ``height``."""
        return {
            "height": int(self.shape[0]),
            "width": int(self.shape[1]),
            "rails": [rail.to_dict() for rail in self.rails],
        }


@dataclass
class _Trace:
    """A rail being followed upward: its per-row points, band by band."""

    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    missed: int = 0

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Columns where the rail should cross ``rows``: a local curve through its last points.

        A quadratic in the row follows the growing bend of a curve seen towards the horizon,
        where a straight line would fall onto the neighbouring rail.
        """
        y = np.concatenate(self.rows[-3:]).astype(float)
        x = np.concatenate(self.cols[-3:])
        if np.unique(y).size < 3:
            return np.full(rows.shape, float(x.mean()))
        # across a gap (occlusion, dashes) a straight line extrapolates safely; a quadratic runs away
        degree = 2 if y.max() - y.min() >= 12 and self.missed == 0 else 1
        centre = y.mean()
        coef = np.polyfit(y - centre, x, degree)
        return np.polyval(coef, rows - centre)

    def add(self, rows: np.ndarray, cols: np.ndarray) -> None:
        """Record a band's points; the rail is seen again."""
        self.rows.append(rows)
        self.cols.append(cols)
        self.missed = 0


def _runs(profile: np.ndarray, merge_gap: int, min_pixels: int) -> np.ndarray:
    """Runs of occupied columns in one band's column profile, as ``(k, 2)`` inclusive [start, end]."""
    cols = np.flatnonzero(profile)
    if cols.size == 0:
        return np.empty((0, 2), dtype=int)
    breaks = np.flatnonzero(np.diff(cols) > merge_gap + 1)
    first = np.r_[0, breaks + 1]
    last = np.r_[breaks, cols.size - 1]
    mass = np.add.reduceat(profile[cols], first)
    keep = mass >= min_pixels
    return np.stack([cols[first][keep], cols[last][keep]], axis=1)


class _BandSums:
    """Prefix sums of one band along its columns: pixel counts and column sums of any row span."""

    def __init__(self, band: np.ndarray, r0: int) -> None:
        self.r0 = r0
        self.rows = np.arange(band.shape[0])
        cols = np.arange(band.shape[1], dtype=float)
        self.count = np.zeros((band.shape[0], band.shape[1] + 1))
        self.total = np.zeros_like(self.count)
        np.cumsum(band, axis=1, out=self.count[:, 1:])
        np.cumsum(band * cols, axis=1, out=self.total[:, 1:])

    def centroids(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Per-row centroids of pixels in columns ``lo[r]..hi[r]`` (inclusive); rows without pixels dropped."""
        lo = np.clip(lo, 0, self.count.shape[1] - 1)
        hi = np.clip(hi + 1, lo, self.count.shape[1] - 1)
        counts = self.count[self.rows, hi] - self.count[self.rows, lo]
        sums = self.total[self.rows, hi] - self.total[self.rows, lo]
        has = counts > 0
        return self.rows[has] + self.r0, sums[has] / counts[has], int(counts.sum())


def _follow_rails(mask: np.ndarray, config: RailFitConfig) -> list[_Trace]:
    """Follow every rail upward band by band (the sliding windows of Figure 5b).

    In each band, every rail predicts its column row by row and takes the nearest run of
    rail pixels within its reach; its points are the per-row centroids of that run's pixels
    inside the window. The reach never passes halfway to a neighbouring rail, which keeps
    converging rails apart towards the horizon. Runs no rail takes start new rails.
    """
    height, width = mask.shape
    margin = config.margin_px if config.margin_px is not None else max(width / 64, 6.0)
    edges = np.unique(np.linspace(0, height, config.n_windows + 1).round().astype(int))
    profiles = np.add.reduceat(mask, edges[:-1], axis=0, dtype=np.int32)
    active: list[_Trace] = []
    finished: list[_Trace] = []
    for band in range(len(edges) - 2, -1, -1):  # bottom band first
        r0, r1 = int(edges[band]), int(edges[band + 1])
        runs = _runs(profiles[band], config.merge_gap_px, config.min_pixels)
        claimed = np.zeros(len(runs), dtype=bool)
        if len(runs) == 0:
            for trace in active:
                trace.missed += 1
        else:
            sums = _BandSums(mask[r0:r1], r0)
            rows = np.arange(r0, r1, dtype=float)
            predicted = np.array([trace.predict(rows) for trace in active]).reshape(len(active), rows.size)
            reach = np.full(predicted.shape, margin)
            if len(active) > 1:  # half the distance to the nearest neighbour, row by row
                apart = np.abs(predicted[:, None, :] - predicted[None, :, :])
                apart[np.arange(len(active)), np.arange(len(active))] = np.inf
                reach = np.clip(apart.min(axis=1) / 2, 1.0, margin)
            for trace, x_row, reach_row in zip(active, predicted, reach):
                x_mid, reach_mid = float(x_row.mean()), float(reach_row.mean())
                gap = np.maximum(0, np.maximum(runs[:, 0] - x_mid, x_mid - runs[:, 1]))
                best = int(np.argmin(gap))
                if gap[best] > reach_mid + abs(float(x_row[0] - x_row[-1])) / 2:
                    trace.missed += 1
                    continue
                start, end = runs[best]
                lo = np.maximum(np.ceil(x_row - reach_row), start).astype(int)
                hi = np.minimum(np.floor(x_row + reach_row), end).astype(int)
                got_rows, got_cols, count = sums.centroids(lo, hi)
                if count < config.min_pixels:
                    trace.missed += 1
                    continue
                trace.add(got_rows, got_cols)
                claimed[best] = True
            for start, end in runs[~claimed]:  # runs no rail took start new rails
                got_rows, got_cols, _ = sums.centroids(np.full(r1 - r0, start), np.full(r1 - r0, end))
                active.append(_Trace(rows=[got_rows], cols=[got_cols]))
        finished.extend(t for t in active if t.missed > config.max_missed_windows)
        active = [t for t in active if t.missed <= config.max_missed_windows]
    return [t for t in finished + active if len(t.rows) >= config.min_windows]


def _design(y: np.ndarray, horizon: float | None, height: int) -> np.ndarray:
    """Design matrix of the cubic (``horizon is None``) or perspective curve, in rows scaled by ``height``.

    Scaling keeps the columns near 1 so the least-squares solve stays well conditioned;
    :func:`_raw_coeffs` undoes it.
    """
    if horizon is None:
        t = y / height
        return np.stack([np.ones_like(t), t, t**2, t**3], axis=-1)
    return _perspective_design((y - horizon) / height)


def _raw_coeffs(scaled: np.ndarray, horizon: float | None, height: int) -> np.ndarray:
    """Coefficients in pixel rows from coefficients of :func:`_design`'s scaled columns."""
    powers = np.array([0, 1, 2, 3]) if horizon is None else np.array([0, 1, -1, -2])
    return scaled / float(height) ** powers


def _n_terms(y: np.ndarray, degree: int, height: int) -> int:
    """How many curve terms the points can fix: fewer for few rows or a short rail."""
    n_rows = np.unique(y).size
    terms = min(degree + 1, n_rows)
    if y.max() - y.min() < 0.05 * height:  # too short to fix a curvature
        terms = min(terms, 2)
    return terms


def _solve(design: np.ndarray, x: np.ndarray, terms: int) -> np.ndarray:
    """Least squares (Eq. 2-4) on the first ``terms`` columns; the rest of the 4 coefficients are 0."""
    coef = np.zeros(4)
    coef[:terms] = np.linalg.lstsq(design[:, :terms], x, rcond=None)[0]
    return coef


def _robust_fit(
    y: np.ndarray, x: np.ndarray, horizon: float | None, config: RailFitConfig, height: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Fit, drop points far from the fit, fit again. Returns (scaled coefficients, kept points)."""
    terms = _n_terms(y, config.degree if horizon is None else 3, height)
    if terms < 2:
        return None
    design = _design(y, horizon, height)
    coef = _solve(design, x, terms)
    residual = np.abs(x - design @ coef)
    spread = 1.4826 * np.median(residual)  # robust sigma from the median deviation
    keep = residual <= max(config.outlier_px, 3.0 * spread)
    if keep.sum() < config.min_windows or np.unique(y[keep]).size < 2:
        return None
    terms = _n_terms(y[keep], config.degree if horizon is None else 3, height)
    return _solve(design[keep], x[keep], terms), keep


def _trimmed_sse(residual: np.ndarray) -> float:
    """Sum of squared residuals without the largest 5% (stray rows must not steer a sweep)."""
    squared = np.sort(residual**2)
    return float(squared[: max(1, int(0.95 * squared.size))].sum())


def _sweep_horizon(cost: Callable[[float], float], top: float, height: int) -> float:
    """Horizon row above ``top`` (the highest rail point) with the least ``cost(horizon)``.

    A coarse logarithmic sweep of the gap above ``top``, then a fine sweep around the best.
    Where the cost does not depend on it (straight track) the farthest near-best horizon is
    taken, which keeps the curves tame just beyond the rails' ends.
    """
    gaps = np.geomspace(1.0, 2.0 * height, 40)
    costs = np.array([cost(top - g) for g in gaps])
    i = int(np.argmin(costs))
    fine = np.linspace(gaps[max(i - 1, 0)], gaps[min(i + 1, gaps.size - 1)], 25)
    gaps = np.concatenate([gaps, fine])
    costs = np.concatenate([costs, [cost(top - g) for g in fine]])
    near_best = costs <= costs.min() * (1 + 1e-3) + 1e-9
    return top - float(gaps[near_best].max())


def _estimate_horizon(points: list[tuple[np.ndarray, np.ndarray]], height: int) -> float | None:
    """Horizon row that lets the perspective curve fit every rail best (least total residual).

    All rails of a flat scene share one horizon, so it is searched jointly over the rails long
    enough to show their curvature.
    """
    usable = [(y, x) for y, x in points if y.max() - y.min() >= 0.05 * height and np.unique(y).size >= 8]
    if not usable:
        return None

    def cost(horizon: float) -> float:
        total = 0.0
        for y, x in usable:
            design = _design(y, horizon, height)
            total += _trimmed_sse(x - design @ _solve(design, x, 4))
        return total

    return _sweep_horizon(cost, min(float(y.min()) for y, _ in usable), height)


@dataclass(frozen=True)
class _FittedTrace:
    """A fitted rail with every point (rows ``y``, columns ``x``) of the trace it was fitted to."""

    rail: Rail
    y: np.ndarray
    x: np.ndarray


def _rail_from_points(
    ys: np.ndarray, xs: np.ndarray, perspective: np.ndarray | None, horizon: float | None, config: RailFitConfig, height: int
) -> Rail:
    """A :class:`Rail` on the points a fit kept: the paper's cubic fitted to them, and the geometry curve.

    ``perspective`` holds the scaled coefficients of :func:`_design`'s perspective columns, or
    None when the cubic is the geometry curve too.
    """
    cubic = _solve(_design(ys, None, height), xs, _n_terms(ys, config.degree, height))
    curve = cubic if perspective is None else perspective
    return Rail(
        coeffs=_raw_coeffs(cubic, None, height),
        y_min=int(ys.min()),
        y_max=int(ys.max()),
        n_points=int(ys.size),
        rms_px=float(np.sqrt(np.mean((xs - _design(ys, horizon, height) @ curve) ** 2))),
        horizon_row=horizon,
        perspective_coeffs=None if perspective is None else _raw_coeffs(perspective, horizon, height),
    )


def _fit_trace(
    y: np.ndarray, x: np.ndarray, horizon: float | None, config: RailFitConfig, height: int
) -> _FittedTrace | None:
    """Fit one rail: the curve for geometry with outlier removal, and the paper's cubic on the same points."""
    fitted = _robust_fit(y, x, horizon, config, height)
    if fitted is None:
        return None
    coef, keep = fitted
    rail = _rail_from_points(y[keep], x[keep], None if horizon is None else coef, horizon, config, height)
    return _FittedTrace(rail, y, x)


def _track_design(s: np.ndarray, on_left: np.ndarray, height: int) -> np.ndarray:
    """Columns ``1, s [left], s [right], 1/s, 1/s^2`` of one track's two rails.

    ``s`` is the rows below the horizon, scaled by ``height`` as in :func:`_design`.
    """
    t = s / height
    return np.stack([np.ones_like(t), t * on_left, t * ~on_left, 1 / t, 1 / t**2], axis=-1)


def _joint_ego_fit(
    left: _FittedTrace, right: _FittedTrace, horizon: float, sweep: bool, config: RailFitConfig, height: int
) -> tuple[Rail, Rail] | None:
    """Refit the ego track's two rails as one track: perspective curves that share all but the gauge term.

    On flat ground a rail at lateral offset ``X`` on a track that bends away by ``c(Z)`` at
    distance ``Z`` is seen at ``x = u0 + f (X + c(Z)) / z`` with ``s = y - horizon = f h' / z``
    (``z`` the depth along the optical axis, ``h'`` the camera height over the cosine of its
    pitch, ``Z`` an affine function of ``z``). With ``c`` quadratic or cubic in ``Z`` (a curve,
    a transition) that is ``x = b0 + b1 s + b2 / s + b3 / s^2``, and ``X`` enters ``b1`` alone:
    heading, curvature and its change set ``b0``, ``b2``, ``b3`` for both rails of a track (up
    to the rail's own radius being ``R -+ gauge / 2``, under 0.4 px at 100 m on a 400 m curve).
    Fitting one ``b0``, ``b2``, ``b3`` and a ``b1`` per rail to both rails' points lets each
    rail follow the other where it is hidden (a person by one rail near the camera would
    otherwise leave that rail's curve to its far end alone) and catches points a trace took
    from the other rail where the two converge.

    The horizon is swept again on the joint fit (``sweep``) unless it was given: five terms
    for two rails cannot absorb a wrong horizon as two free curves can. Points further than
    ``outlier_px`` (or 3 robust sigmas) from the joint fit are dropped and the fit made again,
    until the kept points stop changing (at most four times).

    Returns the two rails, each covering the rows either was seen on, or None where the track
    model does not hold: either rail fits more than 1 px worse than on its own, or loses more
    than a fifth of the points its own fit kept (a rolled camera, a wrong pair).
    """
    y = np.concatenate([left.y, right.y])
    x = np.concatenate([left.x, right.x])
    on_left = np.r_[np.ones(left.y.size, dtype=bool), np.zeros(right.y.size, dtype=bool)]

    def solve(h: float, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        design = _track_design(y - h, on_left, height)
        coef = np.linalg.lstsq(design[keep], x[keep], rcond=None)[0]
        return coef, x - design @ coef

    everything = np.ones(y.size, dtype=bool)
    if sweep:
        horizon = _sweep_horizon(lambda h: _trimmed_sse(solve(h, everything)[1]), float(y.min()), height)
    keep = everything
    for _ in range(4):  # until the kept points settle: a fit bent towards stray points keeps some at first
        coef, residual = solve(horizon, keep)
        residual = np.abs(residual)
        settled = residual <= max(config.outlier_px, 3.0 * 1.4826 * float(np.median(residual[keep])))
        if np.array_equal(settled, keep):
            break
        keep = settled
    else:
        coef, _ = solve(horizon, keep)
    rails = []
    for fitted, side, b1 in ((left, on_left, coef[1]), (right, ~on_left, coef[2])):
        kept = keep & side
        if kept.sum() < max(config.min_windows, 0.8 * fitted.rail.n_points) or np.unique(y[kept]).size < 2:
            return None
        rail = _rail_from_points(y[kept], x[kept], np.array([coef[0], b1, coef[3], coef[4]]), horizon, config, height)
        if rail.rms_px > fitted.rail.rms_px + 1.0:
            return None
        rails.append(rail)
    # the shared curve holds each rail wherever the track was seen, its partner's rows included
    y_min, y_max = int(y[keep].min()), int(y[keep].max())
    left_rail, right_rail = (dataclasses.replace(rail, y_min=y_min, y_max=y_max) for rail in rails)
    return left_rail, right_rail


def _ego_pair(rails: list[Rail], column: float) -> tuple[int, int] | None:
    """The two rails that straddle ``column`` nearest the camera, with no rail between them.

    For each pair the comparison row is the lowest row both rails cover; pairs seen lower in
    the image (nearer the camera) win, then narrower ones. Without a straddling pair, the pair
    whose middle is nearest ``column`` is taken.
    """
    best: tuple[tuple[float, float], tuple[int, int]] | None = None
    fallback: tuple[float, tuple[int, int]] | None = None
    for i, a in enumerate(rails):
        for j, b in enumerate(rails):
            row = min(a.y_max, b.y_max)
            if i == j or row < max(a.y_min, b.y_min):
                continue
            xa, xb = float(a.x_at(row)), float(b.x_at(row))
            if not xa < xb:
                continue
            between = any(
                k not in (i, j) and r.covers(row) and xa < float(r.x_at(row)) < xb for k, r in enumerate(rails)
            )
            if between:
                continue
            if xa < column < xb:
                key = (-row, xb - xa)
                if best is None or key < best[0]:
                    best = (key, (i, j))
            else:
                distance = abs((xa + xb) / 2 - column)
                if fallback is None or distance < fallback[0]:
                    fallback = (distance, (i, j))
    if best is not None:
        return best[1]
    return None if fallback is None else fallback[1]


def fit_rails(mask: np.ndarray, config: RailFitConfig | None = None, source: str = "mask") -> RailFit:
    """Find and fit every rail in a binary rail mask.

    Args:
        mask: ``(H, W)`` array, nonzero on rail pixels; any size.
        config: Window, margin and fitting settings.
        source: Name used in error messages (e.g. the file name).

    Returns:
        A :class:`RailFit`: rails sorted left to right by their column at their lowest row,
        the ego pair marked.

    Raises:
        InputError: the mask is not two-dimensional.
        NoRailsFoundError: no rail could be followed over ``min_windows`` bands.

    Example:
        >>> mask = np.zeros((200, 300), dtype=bool)
        >>> mask[:, 95:100] = mask[:, 200:205] = True
        >>> fit = fit_rails(mask)
        >>> [round(float(r.x_at(100)), 1) for r in fit.rails], fit.ego
        ([97.0, 202.0], (0, 1))
    """
    config = config or RailFitConfig()
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"{source}: expected a single-channel (H, W) mask, got shape {mask.shape}")
    mask = mask.astype(bool, copy=False)
    height = mask.shape[0]
    traces = _follow_rails(mask, config) if mask.any() else []
    points = [(np.concatenate(t.rows).astype(float), np.concatenate(t.cols)) for t in traces]
    horizon = None
    if config.model == "perspective":
        horizon = config.horizon_row_px if config.horizon_row_px is not None else _estimate_horizon(points, height)
        if horizon is not None and any(float(y.min()) <= horizon for y, _ in points):
            raise InputError(f"{source}: rail pixels at or above the horizon row {horizon:g}")
    traced = [fit for fit in (_fit_trace(y, x, horizon, config, height) for y, x in points) if fit is not None]
    if not traced:
        raise NoRailsFoundError(f"no rails found in {source}")
    traced.sort(key=lambda fit: float(fit.rail.x_at(fit.rail.y_max)))
    rails = [fit.rail for fit in traced]
    column = config.ego_column_px if config.ego_column_px is not None else (mask.shape[1] - 1) / 2
    ego = _ego_pair(rails, column)
    if ego is not None and horizon is not None and config.joint_ego:
        sweep = config.horizon_row_px is None
        joint = _joint_ego_fit(traced[ego[0]], traced[ego[1]], horizon, sweep, config, height)
        if joint is not None:
            if sweep:  # one scene, one horizon: the other rails follow the one the pair found
                new_horizon = joint[0].horizon_row
                rails = [rail if k in ego else _refit(traced[k], new_horizon, config, height) for k, rail in enumerate(rails)]
            rails[ego[0]], rails[ego[1]] = joint
    if ego is not None:
        rails = [dataclasses.replace(r, ego=k in ego) for k, r in enumerate(rails)]
    return RailFit(rails=tuple(rails), shape=(int(mask.shape[0]), int(mask.shape[1])), ego=ego)


def _refit(fit: _FittedTrace, horizon: float, config: RailFitConfig, height: int) -> Rail:
    """``fit``'s rail fitted again to another horizon; its first fit where its points no longer
    allow one (none of its rows may lie on or above the horizon)."""
    again = _fit_trace(fit.y, fit.x, horizon, config, height) if fit.y.min() > horizon else None
    return fit.rail if again is None else again.rail
