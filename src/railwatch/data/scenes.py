"""Seeded cab-view railway images with exact labels: masks, boxes and metric truth.

A scene is flat ground seen by a pinhole :class:`~railwatch.camera.Camera`: one or more tracks
in 1435 mm gauge (straight, curved with clothoid transitions, parallel neighbours, diverging
turnouts), objects of the four intrusion classes standing at known ground positions, and a
weather. Every pixel below the horizon is back-projected to the ground and coloured from its
position relative to each track, so the rail heads, sleepers and ballast are where the camera
model puts them; :mod:`railwatch.data.scene_render` does the painting.

Each rendered :class:`SceneSample` carries its labels: the rail-head mask, the track-bed mask,
a semantic map (:data:`SEMANTIC_CLASSES`), the image column of every rail centre line at every
row, and for each object its box, foot pixel, lateral offset, distance and depth.
:func:`write_scene_dataset` writes a YOLO-layout data set of them.

Pixel coordinates follow the camera: pixel centres lie at integer ``(u, v)``, so the image
spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from railwatch.camera import Camera
from railwatch.config import OBJECT_TYPES
from railwatch.data.rail_masks import OBJECT_SIZES_M, ObjectTruth, RailTruth, SceneObject
from railwatch.data.scene_render import RAIL_CENTRE_M, paint_scene
from railwatch.errors import InputError
from railwatch.imageio import write_image, write_text

SEMANTIC_CLASSES: tuple[str, ...] = ("background", "track", "rail", "person", "car", "animal", "stone")
"""Semantic map classes, ids 0..6; the first three are the track segmenter's classes."""

WEATHERS: tuple[str, ...] = ("clear", "overcast", "fog", "rain", "night")
SLEEPER_KINDS: tuple[str, ...] = ("concrete", "wood")
GROUND_KINDS: tuple[str, ...] = ("grass", "soil", "gravel")

SCENE_CAMERA = Camera(width_px=1024, height_px=512, focal_px=747.0, mount_height_m=2.5, pitch_deg=2.0)
"""The default scene camera: 1024 x 512 px with the 69 degree field of view of the 1920 px default."""

_STEP_M = 0.05  # centre lines are integrated on this grid
_ARC_M = 600.0
_BRANCH_Z_M = 400.0
_MAX_HEADING = 1.4  # rad; a grid stops before the track turns sideways


def _cumulative(values: np.ndarray, step: float) -> np.ndarray:
    """Trapezoid running integral of samples ``step`` apart, starting at 0."""
    return np.concatenate([[0.0], np.cumsum((values[1:] + values[:-1]) * (step / 2))])


@dataclass(frozen=True)
class SceneTrack:
    """A track centre line on flat ground, described by its curvature along the track.

    The track runs straight from the camera's foot point to ``curve_start_m``, then through a
    clothoid of length ``transition_m`` (curvature growing linearly from 0) into a curve of
    ``radius_m``, which lasts ``curve_length_m`` before the track runs straight again.

    A branch (``branch_of`` set) leaves its parent track tangentially at ``branch_start_m``: its
    centre line is the parent's plus the lateral departure of its own curvature profile, whose
    distances count from the branch start; its ``offset_m`` is not used. It exists only beyond
    ``branch_start_m``.

    Args:
        offset_m: Lateral position of the centre line at z = 0, in metres (right positive).
        radius_m: Curve radius in metres, positive to the right, ``inf`` for straight track.
        curve_start_m: Arc length of straight track before the transition, in metres.
        transition_m: Length of the clothoid before the constant radius, in metres.
        curve_length_m: Length of the constant-radius part, in metres.
        branch_of: Index of the parent track in the scene, for a branch.
        branch_start_m: Forward distance of the switch, in metres, for a branch.
        parent: The parent track itself, for a branch (it defines the branch's geometry).
    """

    offset_m: float = 0.0
    radius_m: float = math.inf
    curve_start_m: float = 0.0
    transition_m: float = 0.0
    curve_length_m: float = math.inf
    branch_of: int | None = None
    branch_start_m: float = 0.0
    parent: SceneTrack | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not abs(self.radius_m) >= 10:
            raise InputError(f"track radius must be at least 10 m in size (or inf), got {self.radius_m}")
        if self.curve_start_m < 0 or self.transition_m < 0 or not self.curve_length_m > 0:
            raise InputError("track curve_start_m and transition_m must be >= 0 and curve_length_m > 0")
        if (self.branch_of is None) != (self.parent is None):
            raise InputError("a branch track needs both branch_of and parent")

    def curvature(self, s_m: np.ndarray | float) -> np.ndarray:
        """Curvature (1/m, positive to the right) at arc length ``s_m`` from the track's start."""
        s = np.asarray(s_m, dtype=float)
        if math.isinf(self.radius_m):
            return np.zeros_like(s)
        into = s - self.curve_start_m
        ramp = np.clip(into / self.transition_m, 0, 1) if self.transition_m > 0 else (into >= 0).astype(float)
        return np.where(into > self.transition_m + self.curve_length_m, 0.0, ramp / self.radius_m)

    @cached_property
    def _profile(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Samples ``(z, x, heading, arc length)`` of the centre line, ``z`` increasing."""
        if self.parent is not None:
            return self._branch_profile(self.parent)
        s = np.arange(0.0, _ARC_M + _STEP_M / 2, _STEP_M)
        heading = _cumulative(self.curvature(s), _STEP_M)
        n = int(np.argmax(np.abs(heading) > _MAX_HEADING)) or s.size
        heading, s = heading[:n], s[:n]
        return _cumulative(np.cos(heading), _STEP_M), self.offset_m + _cumulative(np.sin(heading), _STEP_M), heading, s

    def _branch_profile(self, parent: SceneTrack) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        own = SceneTrack(
            radius_m=self.radius_m,
            curve_start_m=self.curve_start_m,
            transition_m=self.transition_m,
            curve_length_m=self.curve_length_m,
        )
        z = np.arange(0.0, _BRANCH_Z_M + _STEP_M / 2, _STEP_M)
        past = np.maximum(z - self.branch_start_m, 0.0)
        x = parent.centre_x(z) + own.centre_x(past)
        heading = np.arctan(np.tan(parent.heading(z)) + np.tan(own.heading(past)))
        return z, x, heading, _cumulative(1 / np.cos(heading), _STEP_M)

    def centre_x(self, z_m: np.ndarray | float) -> np.ndarray:
        """Lateral position (m) of the track centre at forward distance ``z_m`` (m)."""
        zs, xs, heading, _ = self._profile
        z = np.asarray(z_m, dtype=float)
        x = np.interp(z, zs, xs)
        x = np.where(z > zs[-1], xs[-1] + (z - zs[-1]) * math.tan(heading[-1]), x)
        return np.where(z < 0, xs[0] + z * math.tan(heading[0]), x)

    def heading(self, z_m: np.ndarray | float) -> np.ndarray:
        """Angle (rad) of the track centre line against the forward axis at ``z_m`` (m)."""
        zs, _, heading, _ = self._profile
        return np.interp(np.asarray(z_m, dtype=float), zs, heading)

    def arc_length(self, z_m: np.ndarray | float) -> np.ndarray:
        """Distance along the centre line (m) from z = 0 to forward distance ``z_m`` (m)."""
        zs, _, heading, arc = self._profile
        z = np.asarray(z_m, dtype=float)
        s = np.interp(z, zs, arc)
        s = np.where(z > zs[-1], arc[-1] + (z - zs[-1]) / math.cos(heading[-1]), s)
        return np.where(z < 0, z / math.cos(heading[0]), s)

    def offset_point(self, z_m: np.ndarray | float, across_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Ground point ``across_m`` metres right of the centre line, square to it, at ``z_m``."""
        theta = self.heading(z_m)
        return self.centre_x(z_m) + across_m * np.cos(theta), np.asarray(z_m, dtype=float) - across_m * np.sin(theta)

    def to_dict(self) -> dict:
        """The track's parameters as JSON values; ``null`` stands for an infinite radius or length."""

        def finite(value: float) -> float | None:
            return None if math.isinf(value) else value

        return {
            "offset_m": self.offset_m,
            "radius_m": finite(self.radius_m),
            "curve_start_m": self.curve_start_m,
            "transition_m": self.transition_m,
            "curve_length_m": finite(self.curve_length_m),
            "branch_of": self.branch_of,
            "branch_start_m": self.branch_start_m if self.branch_of is not None else None,
        }


@dataclass(frozen=True)
class SceneSpec:
    """Everything that defines one scene; with a seed it fixes the rendered image exactly.

    Args:
        camera: The camera that sees the scene.
        tracks: Tracks in the scene; ``tracks[ego_index]`` is the one the train runs on.
        ego_index: Index of the ego track.
        objects: Objects standing on the ground; offsets count from the ego track centre.
        weather: One of :data:`WEATHERS`.
        max_distance_m: Tracks are drawn out to this forward distance, in metres.
        intensity: Strength of the weather, 0..1 (rain density, night darkness, fog density).
        visibility_m: Distance (m) at which haze or fog leaves ``1/e`` of the scene's light.
        brightness: Global brightness factor (headlight strength at night).
        contrast: Contrast factor applied by the camera.
        warmth: Colour temperature, -1 (blue) .. 1 (warm).
        noise_sigma: Standard deviation of the camera noise, in grey levels.
        blur_px: Length of the vertical motion blur in rows; 0 or 1 for none.
        sleeper: ``concrete`` or ``wood``.
        ground: Ground beside the track: ``grass``, ``soil`` or ``gravel``.
        horizon_m: Distance of the line of trees and buildings, in metres.
    """

    camera: Camera = SCENE_CAMERA
    tracks: tuple[SceneTrack, ...] = (SceneTrack(),)
    ego_index: int = 0
    objects: tuple[SceneObject, ...] = ()
    weather: str = "clear"
    max_distance_m: float = 120.0
    intensity: float = 0.5
    visibility_m: float = 2000.0
    brightness: float = 1.0
    contrast: float = 1.0
    warmth: float = 0.0
    noise_sigma: float = 2.0
    blur_px: int = 0
    sleeper: str = "concrete"
    ground: str = "grass"
    horizon_m: float = 500.0

    def __post_init__(self) -> None:
        check_weathers([self.weather])
        if not 0 <= self.ego_index < len(self.tracks):
            raise InputError(f"ego_index {self.ego_index} is not a track index (0..{len(self.tracks) - 1})")
        for i, track in enumerate(self.tracks):
            parent = track.branch_of
            if parent is None:
                continue
            if not 0 <= parent < len(self.tracks) or parent == i or self.tracks[parent] != track.parent:
                raise InputError(f"track {i} is a branch of track {track.branch_of}, but its parent is not that track")
        for obj in self.objects:
            if obj.type not in OBJECT_SIZES_M:
                raise InputError(f"unknown object type {obj.type!r}; known types: {', '.join(OBJECT_SIZES_M)}")
            if not obj.distance_m > 0:
                raise InputError(f"object distance must be > 0 m, got {obj.distance_m}")
        if self.sleeper not in SLEEPER_KINDS or self.ground not in GROUND_KINDS:
            raise InputError(f"sleeper must be one of {SLEEPER_KINDS} and ground one of {GROUND_KINDS}")
        if not (self.max_distance_m > 0 and self.visibility_m > 0 and self.horizon_m > self.max_distance_m):
            raise InputError("max_distance_m and visibility_m must be > 0, horizon_m > max_distance_m")

    def appearance(self) -> dict:
        """The appearance settings as plain JSON values."""
        names = ("intensity", "visibility_m", "brightness", "contrast", "warmth", "noise_sigma", "blur_px")
        return {name: getattr(self, name) for name in names} | {
            "sleeper": self.sleeper,
            "ground": self.ground,
            "horizon_m": self.horizon_m,
        }


@dataclass(frozen=True)
class SceneSample:
    """A rendered scene with its labels.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB image.
        rail_mask: ``(H, W)`` bool, visible rail heads (at least half a pixel covered).
        track_mask: ``(H, W)`` bool, visible track bed of every track, sleepers and rails included.
        semantic: ``(H, W)`` uint8 ids of :data:`SEMANTIC_CLASSES`.
        rails: Centre line of every rail, two per track (left, right), in track order.
        objects: Truth of every object, in the order of ``spec.objects``.
        spec: The scene.
        occlusion: Per object, the fraction of its drawn pixels hidden by nearer objects.
    """

    image: np.ndarray
    rail_mask: np.ndarray
    track_mask: np.ndarray
    semantic: np.ndarray
    rails: tuple[RailTruth, ...]
    objects: tuple[ObjectTruth, ...]
    spec: SceneSpec
    occlusion: tuple[float, ...] = ()


def check_weathers(weathers: Sequence[str] | str) -> tuple[str, ...]:
    """Normalise weather names (a sequence or a comma-separated string) and reject unknown ones."""
    names = weathers.split(",") if isinstance(weathers, str) else list(weathers)
    names = [name.strip().lower() for name in names if name.strip()]
    for name in names:
        if name not in WEATHERS:
            raise InputError(f"unknown weather {name!r}; known weathers: {', '.join(WEATHERS)}")
    if not names:
        raise InputError(f"no weather given; choose from {', '.join(WEATHERS)}")
    return tuple(dict.fromkeys(names))


def _parallel(track: SceneTrack, across_m: float) -> SceneTrack:
    """A track ``across_m`` to the right of ``track``, concentric with it on curves.

    Exact on straights and circles; through a transition within about 3 cm for spacings up to
    10 m and radii from 300 m, provided ``track``'s curve starts at least ``|across_m| T / 2R`` ahead.
    """
    if math.isinf(track.radius_m):
        return SceneTrack(offset_m=track.offset_m + across_m)
    radius = track.radius_m - across_m
    # a transition scaled by R'/R ends at the same heading; starting it a T/(2R) later puts the
    # two circles on the same centre, so the tracks stay parallel to within a centimetre
    shift = across_m * track.transition_m / (2 * track.radius_m)
    return SceneTrack(
        offset_m=track.offset_m + across_m,
        radius_m=radius,
        curve_start_m=max(track.curve_start_m + shift, 0.0),
        transition_m=track.transition_m * radius / track.radius_m,
        curve_length_m=track.curve_length_m,
    )


def _random_tracks(rng: np.random.Generator, max_distance_m: float) -> tuple[tuple[SceneTrack, ...], int]:
    ego = SceneTrack(offset_m=float(rng.uniform(-0.15, 0.15)))  # camera not exactly on the centre
    if rng.random() < 0.5:
        start = float(rng.uniform(0, 60)) if rng.random() < 0.6 else 0.0
        transition = float(rng.uniform(20, 80)) if rng.random() < 0.5 else 0.0
        ego = SceneTrack(
            offset_m=ego.offset_m,
            radius_m=float(rng.choice([-1, 1]) * math.exp(rng.uniform(math.log(300), math.log(3000)))),
            curve_start_m=max(start, 2.0) if transition else start,  # room for a neighbour's earlier start
            transition_m=transition,
        )
    acrosses = [0.0]
    layout = rng.choice(["single", "one", "both", "two"], p=[0.45, 0.3, 0.15, 0.1])
    spacing = [float(rng.uniform(4.2, 5.0)) for _ in range(2)]
    side = float(rng.choice([-1, 1]))
    if layout == "one":
        acrosses.append(side * spacing[0])
    elif layout == "both":
        acrosses += [-spacing[0], spacing[1]]
    elif layout == "two":
        acrosses += [side * spacing[0], side * (spacing[0] + spacing[1])]
    acrosses.sort()
    tracks = [_parallel(ego, a) if a else ego for a in acrosses]
    ego_index = acrosses.index(0.0)
    if rng.random() < 0.2:
        outer = [(0, -1.0), (len(tracks) - 1, 1.0)]
        parent_index, direction = outer[int(rng.integers(2))]
        if ego_index in (0, len(tracks) - 1) and rng.random() < 0.6:
            parent_index, direction = ego_index, (-1.0 if ego_index == 0 else 1.0)
            if len(tracks) == 1:
                direction = float(rng.choice([-1, 1]))
        radius = direction * float(rng.uniform(190, 500))
        tracks.append(
            SceneTrack(
                radius_m=radius,
                curve_length_m=abs(radius) * math.atan(1 / rng.uniform(7, 14)),  # turnout angle 1:7 to 1:14
                branch_of=parent_index,
                branch_start_m=float(rng.uniform(10, max(12.0, min(60.0, max_distance_m - 20)))),
                parent=tracks[parent_index],
            )
        )
    return tuple(tracks), ego_index


def _random_objects(rng: np.random.Generator, camera: Camera, ego: SceneTrack) -> tuple[SceneObject, ...]:
    count = int(rng.choice(6, p=[0.12, 0.28, 0.25, 0.17, 0.1, 0.08]))
    objects = []
    for _ in range(count):
        kind = OBJECT_TYPES[int(rng.integers(len(OBJECT_TYPES)))]
        zone = rng.choice(["on", "near", "far"], p=[0.35, 0.35, 0.3])
        for _attempt in range(20):
            distance = float(rng.uniform(8, 120) if rng.random() < 0.5 else 8 * 15 ** rng.random())
            sign = float(rng.choice([-1, 1]))
            low, high = {"on": (-0.79, 0.79), "near": (0.8, 4.0), "far": (4.0, 15.0)}[zone]
            offset = float(rng.uniform(low, high)) * (1.0 if zone == "on" else sign)
            u, _ = camera.project(ego.centre_x(distance) + offset, distance)
            if 0 <= float(u) <= camera.width_px - 1:
                break
        else:
            continue
        top_speed = {"person": 2.0, "car": 15.0, "animal": 5.0, "stone": 0.0}[kind]
        speed = float(rng.uniform(0.3, top_speed)) if top_speed and rng.random() < 0.5 else 0.0
        objects.append(SceneObject(type=kind, offset_m=float(offset), distance_m=distance, speed_mps=speed))
    return tuple(objects)


def _random_appearance(rng: np.random.Generator, weather: str) -> dict:
    intensity = float(rng.uniform(0.0, 1.0) if weather == "fog" else rng.uniform(0.3, 1.0))
    u = rng.uniform
    # brightness, contrast, warmth, visibility (m), camera noise (grey levels)
    values = {
        "clear": (u(0.95, 1.2), u(0.95, 1.15), u(-0.3, 0.6), u(1500, 4000), u(1, 4)),
        "overcast": (u(0.75, 0.95), u(0.8, 0.95), u(-0.4, 0.1), u(600, 1500), u(1, 4)),
        "fog": (u(0.85, 1.05), u(0.85, 1.0), u(-0.2, 0.2), 250 - 190 * intensity, u(1, 4)),
        "rain": (0.85 - 0.25 * intensity, u(0.7, 0.9), u(-0.4, 0.0), u(300, 700) - 150 * intensity, u(2, 5)),
        "night": (u(0.8, 1.2), u(0.95, 1.1), u(0.1, 0.5), u(300, 800), u(4, 9)),
    }[weather]
    names = ("brightness", "contrast", "warmth", "visibility_m", "noise_sigma")
    return {name: float(value) for name, value in zip(names, values)} | {
        "intensity": intensity,
        "blur_px": int(rng.integers(2, 5)) if rng.random() < 0.3 else 0,
        "sleeper": SLEEPER_KINDS[int(rng.random() < 0.3)],
        "ground": str(rng.choice(GROUND_KINDS, p=[0.5, 0.25, 0.25])),
    }


def random_scene_spec(
    rng: np.random.Generator, camera: Camera | None = None, weathers: Sequence[str] = WEATHERS
) -> SceneSpec:
    """Draw a random scene.

    Args:
        rng: Random generator; the spec is a pure function of its state.
        camera: Camera to use; defaults to :data:`SCENE_CAMERA`.
        weathers: Weathers to choose from, uniformly.

    Returns:
        A :class:`SceneSpec`: straight or curved ego track (radius 300-3000 m, maybe with a
        clothoid), up to two parallel neighbours 4.2-5.0 m apart, a diverging turnout one time
        in five, zero to five objects on, near or far from the ego track at 8-120 m, a weather
        of random intensity and random lighting.
    """
    weathers = check_weathers(weathers)
    camera = camera or SCENE_CAMERA
    weather = weathers[int(rng.integers(len(weathers)))]
    max_distance = float(rng.uniform(80, 200))
    tracks, ego_index = _random_tracks(rng, max_distance)
    objects = _random_objects(rng, camera, tracks[ego_index])
    appearance = _random_appearance(rng, weather)
    return SceneSpec(
        camera=camera,
        tracks=tracks,
        ego_index=ego_index,
        objects=objects,
        weather=weather,
        max_distance_m=max_distance,
        horizon_m=float(rng.uniform(max(max_distance, 120) + 40, 900)),
        **appearance,
    )


def rail_truths(spec: SceneSpec) -> tuple[RailTruth, ...]:
    """Image column of every rail's centre line at every row it covers, two rails per track."""
    cam = spec.camera
    _, z_bottom = cam.ground_point(cam.cx, cam.height_px + 20.0)
    # a camera tilted up sees no ground close by: keep the samples in front of the image plane
    in_front = 0.5 - cam.mount_height_m * math.tan(math.radians(cam.pitch_deg))
    z_near = max(float(z_bottom) if np.isfinite(z_bottom) else 1.0, 0.5, in_front)
    rails: list[RailTruth] = []
    for index, track in enumerate(spec.tracks):
        start = max(z_near, track.branch_start_m + 1e-3) if track.branch_of is not None else z_near
        for side, sign in (("left", -1.0), ("right", 1.0)):
            if start >= spec.max_distance_m:
                rails.append(RailTruth(track=index, side=side, rows=np.zeros(0, int), cols=np.zeros(0)))
                continue
            z = np.geomspace(start, spec.max_distance_m, 2000)
            uc, vc = cam.project(*track.offset_point(z, sign * RAIL_CENTRE_M))
            order = np.argsort(vc)
            rows = np.arange(math.ceil(max(vc.min(), 0)), math.floor(min(vc.max(), cam.height_px - 1)) + 1)
            cols = np.interp(rows, vc[order], uc[order])
            inside = (cols >= 0) & (cols <= cam.width_px - 1)
            rails.append(RailTruth(track=index, side=side, rows=rows[inside], cols=cols[inside]))
    return tuple(rails)


def render_scene(spec: SceneSpec, seed: int = 0) -> SceneSample:
    """Render ``spec``: image, masks and truth.

    Args:
        spec: The scene.
        seed: Seed of every detail the spec leaves open (textures, colours, clouds, noise);
            the same spec and seed give identical arrays.

    Returns:
        A :class:`SceneSample`.
    """
    painted = paint_scene(spec, np.random.default_rng(seed))
    return SceneSample(
        image=painted.image,
        rail_mask=painted.rail_mask,
        track_mask=painted.track_mask,
        semantic=painted.semantic,
        rails=rail_truths(spec),
        objects=painted.objects,
        spec=spec,
        occlusion=painted.occlusion,
    )


def make_scene(seed: int, camera: Camera | None = None, weathers: Sequence[str] = WEATHERS) -> SceneSample:
    """Draw a random scene and render it, both from ``seed``.

    Args:
        seed: Non-negative seed; it is split with :class:`numpy.random.SeedSequence` into one
            stream for the spec and one for the painting.
        camera: Camera to use; defaults to :data:`SCENE_CAMERA`.
        weathers: Weathers to choose from.
    """
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    spec_seq, paint_seq = np.random.SeedSequence(seed).spawn(2)
    spec = random_scene_spec(np.random.default_rng(spec_seq), camera, weathers)
    return render_scene(spec, seed=int(paint_seq.generate_state(1, np.uint64)[0]))


def scene_seed(dataset_seed: int, index: int) -> int:
    """Seed of scene ``index`` of a data set: depends on both numbers, not on the set's size."""
    return int(np.random.SeedSequence([dataset_seed, index]).generate_state(1, np.uint64)[0])


def scene_truth(sample: SceneSample) -> dict:
    """A JSON-able record of a sample's truth: camera, scene, rails every 4 rows, objects."""
    spec = sample.spec
    occlusion = sample.occlusion or (0.0,) * len(sample.objects)
    return {
        "camera": spec.camera.model_dump(),
        "weather": spec.weather,
        "appearance": spec.appearance(),
        "max_distance_m": spec.max_distance_m,
        "ego_index": spec.ego_index,
        "tracks": [track.to_dict() for track in spec.tracks],
        "rails": [
            {"track": r.track, "side": r.side, "rows": r.rows[::4].tolist(), "cols": np.round(r.cols[::4], 2).tolist()}
            for r in sample.rails
        ],
        "objects": [
            {
                "class": o.type,
                "class_id": OBJECT_TYPES.index(o.type),
                "box": [round(c, 3) for c in o.box],
                "foot_u": o.foot_u,
                "foot_v": o.foot_v,
                "offset_mm": o.offset_mm,
                "distance_m": o.distance_m,
                "depth_m": o.depth_m,
                "speed_mps": o.speed_mps,
                "occluded": round(float(hidden), 4),
            }
            for o, hidden in zip(sample.objects, occlusion)
        ],
    }


def yolo_lines(sample: SceneSample) -> list[str]:
    """YOLO labels ``cls cx cy w h`` (normalised) of the objects that can be seen.

    An object is labelled when its clipped box is at least 2 px wide and high and some of it
    is not hidden by nearer objects.
    """
    cam = sample.spec.camera
    occlusion = sample.occlusion or (0.0,) * len(sample.objects)
    lines = []
    for obj, hidden in zip(sample.objects, occlusion):
        u0, v0, u1, v1 = obj.box
        if u1 - u0 < 2 or v1 - v0 < 2 or hidden >= 1.0:
            continue
        cx, cy = ((u0 + u1) / 2 + 0.5) / cam.width_px, ((v0 + v1) / 2 + 0.5) / cam.height_px
        w, h = (u1 - u0) / cam.width_px, (v1 - v0) / cam.height_px
        lines.append(f"{OBJECT_TYPES.index(obj.type)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


_FOLDERS = ("images", "labels", "masks/rail", "masks/track", "masks/semantic", "meta")


def _check_dataset_args(count: int, seed: int, val_fraction: float, image_format: str) -> str:
    if count < 1:
        raise InputError(f"count must be at least 1, got {count}")
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    if not 0 <= val_fraction <= 1:
        raise InputError(f"val fraction must be in [0, 1] (1 writes a test set: everything in val), got {val_fraction}")
    fmt = {"jpeg": "jpg"}.get(image_format.lower().lstrip("."), image_format.lower().lstrip("."))
    if fmt not in ("png", "jpg"):
        raise InputError(f"unknown image format {image_format!r}; use png or jpg")
    return fmt


def _write_sample(out: Path, split: str, name: str, fmt: str, sample: SceneSample, extra: dict) -> None:
    write_image(Image.fromarray(sample.image), out / "images" / split / f"{name}.{fmt}")
    lines = yolo_lines(sample)
    write_text("".join(line + "\n" for line in lines), out / "labels" / split / f"{name}.txt")
    for kind, mask in (("rail", sample.rail_mask), ("track", sample.track_mask)):
        write_image(Image.fromarray(mask.astype(np.uint8) * 255), out / "masks" / kind / split / f"{name}.png")
    write_image(Image.fromarray(sample.semantic), out / "masks" / "semantic" / split / f"{name}.png")
    write_text(json.dumps(scene_truth(sample) | extra, indent=1), out / "meta" / split / f"{name}.json")


def write_scene_dataset(
    out: Path,
    count: int,
    seed: int = 0,
    camera: Camera | None = None,
    weathers: Sequence[str] = WEATHERS,
    val_fraction: float = 0.1,
    image_format: str = "png",
    progress: bool = True,
) -> Path:
    """Render ``count`` scenes into a YOLO-layout data set with masks and truth.

    Writes ``images/{train,val}/scene_NNNNNN.{png,jpg}``, YOLO boxes in ``labels/``, rail,
    track and semantic masks in ``masks/{rail,track,semantic}/``, the truth of each scene in
    ``meta/`` (see :func:`scene_truth`) and ``data.yaml``. Scene ``i`` is rendered from
    :func:`scene_seed` ``(seed, i)``, so it is the same in a set of any size; the last
    ``round(count * val_fraction)`` scenes go to ``val``.

    Args:
        out: Folder to write to (created).
        count: Number of scenes, at least 1.
        seed: Non-negative data-set seed.
        camera: Camera to use; defaults to :data:`SCENE_CAMERA`.
        weathers: Weathers to choose from (names or one comma-separated string).
        val_fraction: Fraction of scenes for validation, in [0, 1).
        image_format: ``png`` or ``jpg``.
        progress: Show a progress bar.

    Returns:
        The path of ``data.yaml``.
    """
    fmt = _check_dataset_args(count, seed, val_fraction, image_format)
    weathers = check_weathers(weathers)
    camera = camera or SCENE_CAMERA
    out = Path(out).resolve()
    for folder in _FOLDERS:
        for split in ("train", "val"):
            (out / folder / split).mkdir(parents=True, exist_ok=True)
    n_val = round(count * val_fraction)
    indices: Sequence[int] = range(count)
    if progress:
        from rich.progress import track

        from railwatch.cli_support import console

        indices = track(indices, description="rendering scenes", console=console)  # type: ignore[assignment]
    for i in indices:
        split = "val" if i >= count - n_val else "train"
        seed_i = scene_seed(seed, i)
        sample = make_scene(seed_i, camera, weathers)
        _write_sample(out, split, f"scene_{i:06d}", fmt, sample, {"seed": seed_i, "index": i})
    data = {
        "path": str(out),
        "train": "images/train",
        "val": "images/val",
        "nc": len(OBJECT_TYPES),
        "names": list(OBJECT_TYPES),
        "semantic_classes": list(SEMANTIC_CLASSES),
        "camera": camera.model_dump(),
        "seed": seed,
        "count": count,
        "weathers": list(weathers),
    }
    return write_text(yaml.safe_dump(data, sort_keys=False), out / "data.yaml")
