"""Binary rail masks of cab-view scenes, drawn through a pinhole camera with exact truth.

A scene is one or more tracks on flat ground (straight or constant-radius curves, 1435 mm
gauge), seen by a :class:`~railwatch.camera.Camera`. Each rail head is drawn as the polygon
between its two edges, so the mask narrows with distance exactly as a camera would see it.
Options make the mask harder: dashed rails (gaps), pixel dropout, salt noise, and objects
whose boxes hide the rails behind them.

Every sample carries its truth: for each rail the image column of its centre line at every
row it covers, and for each object its foot pixel, box, lateral offset and depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from railwatch.camera import Camera
from railwatch.errors import InputError

SceneKind = Literal["straight", "curved", "multi", "dashed", "noisy", "mixed"]
SCENE_KINDS: tuple[str, ...] = ("straight", "curved", "multi", "dashed", "noisy", "mixed")

# Object footprints in metres (width, height) used to draw boxes that hide rails.
OBJECT_SIZES_M: dict[str, tuple[float, float]] = {
    "person": (0.6, 1.75),
    "car": (1.9, 1.5),
    "animal": (1.2, 1.0),
    "stone": (0.5, 0.4),
}


@dataclass(frozen=True)
class Track:
    """A track on flat ground.

    Args:
        offset_m: Lateral position of the track centre below the camera (z = 0), in metres.
        radius_m: Curve radius in metres, positive to the right, ``inf`` for straight track.
    """

    offset_m: float = 0.0
    radius_m: float = math.inf

    def centre_x(self, z_m: np.ndarray) -> np.ndarray:
        """Lateral position (m) of the track centre at forward distance ``z_m`` (m)."""
        z = np.asarray(z_m, dtype=float)
        if math.isinf(self.radius_m):
            return np.full_like(z, self.offset_m)
        r = abs(self.radius_m)
        return self.offset_m + math.copysign(1.0, self.radius_m) * (r - np.sqrt(np.maximum(r * r - z * z, 0.0)))

    def heading(self, z_m: np.ndarray) -> np.ndarray:
        """Angle (rad) of the track centre line against the forward axis at ``z_m`` (m)."""
        z = np.asarray(z_m, dtype=float)
        if math.isinf(self.radius_m):
            return np.zeros_like(z)
        return math.copysign(1.0, self.radius_m) * np.arcsin(np.clip(z / abs(self.radius_m), -1, 1))

    def offset_point(self, z_m: np.ndarray, across_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Ground point ``across_m`` metres right of the centre line, square to it, at ``z_m``."""
        theta = self.heading(z_m)
        return self.centre_x(z_m) + across_m * np.cos(theta), np.asarray(z_m, dtype=float) - across_m * np.sin(theta)


@dataclass(frozen=True)
class SceneObject:
    """An object standing on the ground.

    Args:
        type: Class name (person, car, animal, stone).
        offset_m: Lateral offset from the ego track centre at the object's distance, in metres.
        distance_m: Forward distance from the camera's foot point, in metres.
        speed_mps: Speed over the ground in m/s (carried to the truth, not drawn).
    """

    type: str
    offset_m: float
    distance_m: float
    speed_mps: float = 0.0


@dataclass(frozen=True)
class RailMaskScene:
    """Everything that defines one rail mask.

    Args:
        camera: The camera that sees the scene.
        tracks: Tracks in the scene; ``tracks[ego_index]`` is the one the train runs on.
        ego_index: Index of the ego track.
        gauge_m: Track gauge between the rails' inner faces, in metres.
        rail_head_m: Rail head width, in metres.
        max_distance_m: Rails are drawn out to this distance, in metres.
        dash_m: ``(on, off)`` lengths in metres for dashed rails; ``None`` for continuous rails.
        dropout: Fraction of rail pixels removed at random.
        salt: Fraction of all pixels set at random.
        objects: Objects in the scene; their boxes hide the rails behind them.
    """

    camera: Camera = field(default_factory=Camera)
    tracks: tuple[Track, ...] = (Track(),)
    ego_index: int = 0
    gauge_m: float = 1.435
    rail_head_m: float = 0.072
    max_distance_m: float = 120.0
    dash_m: tuple[float, float] | None = None
    dropout: float = 0.0
    salt: float = 0.0
    objects: tuple[SceneObject, ...] = ()


@dataclass(frozen=True)
class RailTruth:
    """Where one rail's centre line is in the image: column ``cols[i]`` at row ``rows[i]``."""

    track: int
    side: Literal["left", "right"]
    rows: np.ndarray
    cols: np.ndarray

    def x_at(self, rows: np.ndarray) -> np.ndarray:
        """Column of the rail centre (px) at ``rows``; NaN outside the drawn range."""
        return np.interp(rows, self.rows, self.cols, left=np.nan, right=np.nan)


@dataclass(frozen=True)
class ObjectTruth:
    """Ground truth of one object: image position and metric position."""

    type: str
    foot_u: float
    foot_v: float
    box: tuple[float, float, float, float]
    offset_mm: float
    distance_m: float
    depth_m: float
    speed_mps: float


@dataclass(frozen=True)
class RailMaskSample:
    """A rendered mask with its truth."""

    mask: np.ndarray
    rails: tuple[RailTruth, ...]
    objects: tuple[ObjectTruth, ...]
    scene: RailMaskScene


def _distance_samples(scene: RailMaskScene) -> np.ndarray:
    """Forward distances (m) from just below the image bottom to the far end, dense near the camera."""
    cam = scene.camera
    _, z_bottom = cam.ground_point(cam.cx, cam.height_px + 20.0)
    z_near = float(z_bottom) if np.isfinite(z_bottom) else 1.0
    return np.geomspace(max(z_near, 0.5), scene.max_distance_m, 2000)


def _rail_on_intervals(z: np.ndarray, dash_m: tuple[float, float] | None, phase: float) -> list[np.ndarray]:
    """Split distance samples into the stretches where a rail is drawn."""
    if dash_m is None:
        return [np.arange(z.size)]
    on, off = dash_m
    drawn = ((z + phase) % (on + off)) < on
    edges = np.flatnonzero(np.diff(drawn.astype(np.int8)))
    pieces = np.split(np.arange(z.size), edges + 1)
    return [p for p in pieces if drawn[p[0]] and p.size >= 2]


def render_rail_mask(scene: RailMaskScene, seed: int = 0) -> RailMaskSample:
    """Draw the rail-head mask of ``scene``.

    Args:
        scene: Tracks, camera and corruption settings.
        seed: Seed of the corruption noise and dash phases; the same seed gives the same mask.

    Returns:
        A :class:`RailMaskSample` with an ``(H, W)`` bool mask and the truth of every rail and
        object.
    """
    if not 0 <= scene.ego_index < len(scene.tracks):
        raise InputError(f"ego_index {scene.ego_index} is not a track index (0..{len(scene.tracks) - 1})")
    rng = np.random.default_rng(seed)
    cam = scene.camera
    width, height = cam.width_px, cam.height_px
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    z = _distance_samples(scene)
    half_spacing = (scene.gauge_m + scene.rail_head_m) / 2
    half_head = scene.rail_head_m / 2
    rails: list[RailTruth] = []
    for t_index, track in enumerate(scene.tracks):
        for side, sign in (("left", -1.0), ("right", 1.0)):
            centre = sign * half_spacing
            xi, zi = track.offset_point(z, centre - half_head)
            xo, zo = track.offset_point(z, centre + half_head)
            ui, vi = cam.project(xi, zi)
            uo, vo = cam.project(xo, zo)
            for piece in _rail_on_intervals(z, scene.dash_m, phase=float(rng.uniform(0, 50))):
                # Pillow truncates vertex coordinates; +0.5 makes that rounding to the pixel centre
                outline = list(zip(ui[piece] + 0.5, vi[piece] + 0.5)) + list(
                    zip(uo[piece][::-1] + 0.5, vo[piece][::-1] + 0.5)
                )
                draw.polygon(outline, fill=1, outline=1)
            xc, zc = track.offset_point(z, centre)
            uc, vc = cam.project(xc, zc)
            order = np.argsort(vc)
            rows = np.arange(math.ceil(max(vc.min(), 0)), math.floor(min(vc.max(), height - 1)) + 1)
            cols = np.interp(rows, vc[order], uc[order])
            inside = (cols >= 0) & (cols <= width - 1)
            rails.append(RailTruth(track=t_index, side=side, rows=rows[inside], cols=cols[inside]))
    mask = np.array(canvas, dtype=bool)
    objects = _place_objects(scene, mask)
    if scene.dropout > 0:
        mask &= rng.random(mask.shape) >= scene.dropout
    if scene.salt > 0:
        mask |= rng.random(mask.shape) < scene.salt
    return RailMaskSample(mask=mask, rails=tuple(rails), objects=tuple(objects), scene=scene)


def _place_objects(scene: RailMaskScene, mask: np.ndarray) -> list[ObjectTruth]:
    """Project the objects, clear the rail pixels their boxes hide, and return their truth."""
    cam = scene.camera
    ego = scene.tracks[scene.ego_index]
    found: list[ObjectTruth] = []
    for obj in scene.objects:
        size = OBJECT_SIZES_M.get(obj.type)
        if size is None:
            raise InputError(f"unknown object type {obj.type!r}; known types: {', '.join(OBJECT_SIZES_M)}")
        z = np.array([obj.distance_m])
        x = ego.centre_x(z) + obj.offset_m
        u, v = cam.project(x, z)
        depth = float(cam.depth(z)[0])
        w_px, h_px = cam.focal_px * size[0] / depth, cam.focal_px * size[1] / depth
        u0, u1 = float(u[0]) - w_px / 2, float(u[0]) + w_px / 2
        v0, v1 = float(v[0]) - h_px, float(v[0])
        r0, r1 = max(int(v0), 0), min(int(math.ceil(v1)), mask.shape[0])
        c0, c1 = max(int(u0), 0), min(int(math.ceil(u1)), mask.shape[1])
        mask[r0:r1, c0:c1] = False
        found.append(
            ObjectTruth(
                type=obj.type,
                foot_u=float(u[0]),
                foot_v=float(v[0]),
                box=(u0, v0, u1, v1),
                offset_mm=obj.offset_m * 1000.0,
                distance_m=obj.distance_m,
                depth_m=depth,
                speed_mps=obj.speed_mps,
            )
        )
    return found


def random_scene(kind: SceneKind, rng: np.random.Generator, camera: Camera | None = None) -> RailMaskScene:
    """Draw a random scene of one kind.

    Args:
        kind: ``straight`` (ego track only), ``curved`` (radius 400-3000 m either way),
            ``multi`` (neighbouring tracks 4.2-5.0 m apart, maybe curved), ``dashed`` (gaps in
            the rails), ``noisy`` (dropout and salt noise), or ``mixed`` (any of these).
        rng: Random generator; the scene is a pure function of its state.
        camera: Camera to use; defaults to :class:`Camera` defaults.

    Returns:
        A :class:`RailMaskScene`.
    """
    if kind not in SCENE_KINDS:
        raise InputError(f"unknown scene kind {kind!r}; known kinds: {', '.join(SCENE_KINDS)}")
    if kind == "mixed":
        kind = SCENE_KINDS[int(rng.integers(0, len(SCENE_KINDS) - 1))]  # type: ignore[assignment]
    camera = camera or Camera()
    ego_shift = float(rng.uniform(-0.15, 0.15))  # camera not exactly on the track centre
    radius = math.inf
    if kind != "straight" and rng.random() < (1.0 if kind == "curved" else 0.5):
        radius = float(rng.choice([-1, 1]) * rng.uniform(400, 3000))
    tracks = [Track(offset_m=ego_shift, radius_m=radius)]
    if kind == "multi":
        spacing = float(rng.uniform(4.2, 5.0))
        for side in rng.permutation([-1, 1])[: int(rng.integers(1, 3))]:
            across = float(side) * spacing  # concentric with the ego track on curves
            tracks.append(Track(offset_m=ego_shift + across, radius_m=radius - across))
    return RailMaskScene(
        camera=camera,
        tracks=tuple(tracks),
        max_distance_m=float(rng.uniform(80, 150)),
        dash_m=(float(rng.uniform(3, 8)), float(rng.uniform(1, 3))) if kind == "dashed" else None,
        dropout=float(rng.uniform(0.05, 0.2)) if kind == "noisy" else 0.0,
        salt=float(rng.uniform(0.0005, 0.002)) if kind == "noisy" else 0.0,
    )
