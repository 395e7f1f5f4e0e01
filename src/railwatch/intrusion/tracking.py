"""Tracking objects across frames, and their speed over the ground (paper 003, section 2.3.2).

Eq. 17 scales the risk by ``f_speed = 1 + v/10`` with ``v`` the object's speed; the paper takes
``v`` from tracking without saying how. railwatch tracks detections with ByteTrack
(``supervision``), places each track's foot point against the ego track in every frame
(lateral offset by Eq. 9-13, distance by gauge ranging), and fits the speed to that ground
position:

- :class:`ObjectTracker` gives every detection a track id that stays with the object across
  frames, and a class that is the majority of the track's detections so far (a class flickering
  between person and animal does not flip the type weight ``W_type``); a track the detector
  misses for a moment is still reported, "coasting" at ByteTrack's Kalman prediction of its
  box, for up to ``tracking.coast_s`` seconds;
- :class:`GroundHistory` keeps each track's ground positions ``(t, x, d)`` (lateral offset and
  distance ahead, in metres) over the last ``speed_window_s`` seconds, and
  :func:`ground_velocity` fits ``x(t)`` and ``d(t)`` with straight lines by least squares. The
  camera rides the train, so a still object comes nearer at the train's speed: the velocity
  over the ground is ``(dx/dt, dd/dt + v_train)`` and the speed its length.
"""

from __future__ import annotations

import warnings
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from railwatch.config import TrackingConfig
from railwatch.intrusion.det.types import Detections


def _supervision():
    """Import ``supervision`` without its warning that OpenCV is missing (its NumPy fallback is used)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*OpenCV.*", category=UserWarning)
        import supervision

    return supervision


@dataclass(frozen=True)
class TrackedObjects:
    """The tracked detections of one frame.

    Attributes:
        boxes: ``(N, 4)`` float boxes ``x1, y1, x2, y2`` in px.
        scores: ``(N,)`` detection confidences.
        class_ids: ``(N,)`` class ids: each track's majority class so far.
        class_names: Names of the detector's classes, in id order.
        track_ids: ``(N,)`` track ids, stable across frames (from 1).
        coasted: ``(N,)`` bools: the detector missed the object in this frame and ``boxes``
            holds the track's predicted box (``scores`` its last detection's); all ``False``
            when not given.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: tuple[str, ...]
    track_ids: np.ndarray
    coasted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        if len(self.coasted) != len(self.track_ids):
            if len(self.coasted):
                raise ValueError(f"coasted has {len(self.coasted)} entries for {len(self.track_ids)} tracks")
            object.__setattr__(self, "coasted", np.zeros(len(self.track_ids), dtype=bool))

    def __len__(self) -> int:
        return len(self.track_ids)

    @property
    def names(self) -> list[str]:
        """Class name of each tracked object."""
        return [self.class_names[int(i)] for i in self.class_ids]

    @property
    def foot_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Foot point ``(u, v)`` of each object in px: the bottom centre of its box, ``(N,)`` each."""
        return (self.boxes[:, 0] + self.boxes[:, 2]) / 2, self.boxes[:, 3].copy()


class ObjectTracker:
    """ByteTrack over :class:`~railwatch.intrusion.det.types.Detections`, one frame at a time.

    A detection seen for the first time after the first frame is reported from its second
    frame on (ByteTrack confirms new tracks on a second match); detections that match no
    track, and empty or inverted boxes, are left out.

    ByteTrack matches boxes by IoU, and a person 50 m away is a box of 10 x 25 px, whose IoU
    with its own track falls below the matching thresholds after a pixel or two of detector
    jitter. The boxes are therefore widened by ``pad_px`` on every side for matching only;
    the boxes returned are the detector's own.

    A confirmed track the detector misses (a stone on grey ballast in fog, a person behind a
    pole) stays in ByteTrack as "lost", its box still predicted by the Kalman filter (constant
    velocity, height held) so that a later detection can find it again. For up to
    ``config.coast_s`` seconds such a track is reported too, at that predicted box and marked
    ``coasted``, so its risk level does not drop out with the detection; a predicted foot
    point outside the frame ends the coasting.

    Args:
        config: Thresholds and buffer of ByteTrack (``tracking`` settings).
        fps: Frame rate of the video, frames per second (scales the lost-track buffer).
        pad_px: Margin added to every side of a box for matching, px (0 for plain ByteTrack).

    Example:
        >>> tracker = ObjectTracker(TrackingConfig(), fps=25)
        >>> dets = Detections(np.array([[10.0, 10, 50, 90]]), np.array([0.9]), np.array([0]), ("person",))
        >>> [tracker.update(dets).track_ids.tolist() for _ in range(3)]
        [[1], [1], [1]]
    """

    def __init__(self, config: TrackingConfig | None = None, fps: float = 25.0, pad_px: float = 4.0) -> None:
        self.config = config or TrackingConfig()
        self.fps = fps
        self.pad_px = pad_px
        sv = _supervision()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ByteTrack.*deprecated.*", category=FutureWarning)
            self._tracker = sv.ByteTrack(
                track_activation_threshold=self.config.track_activation_threshold,
                lost_track_buffer=self.config.lost_track_buffer,
                minimum_matching_threshold=self.config.minimum_matching_threshold,
                frame_rate=fps,
                minimum_consecutive_frames=self.config.minimum_consecutive_frames,
            )
        self._sv = sv
        self.class_votes_: dict[int, Counter[int]] = {}
        self.coast_frames = int(round(self.config.coast_s * fps))

    def update(self, detections: Detections, frame_size: tuple[int, int] | None = None) -> TrackedObjects:
        """Match one frame's detections to the tracks; returns the tracked ones with their ids.

        ``frame_size`` (height, width in px), when given, ends the coasting of a track whose
        predicted foot point leaves the frame.
        """
        boxes = np.asarray(detections.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(detections.scores, dtype=np.float32).reshape(-1)
        # empty or inverted boxes and NaNs cannot be tracked (ByteTrack drops them too, unpadded)
        keep = np.flatnonzero(
            np.isfinite(boxes).all(axis=1) & np.isfinite(scores) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        )
        sv_dets = self._sv.Detections(
            xyxy=boxes[keep] + np.float32(self.pad_px) * np.array([-1, -1, 1, 1], np.float32),
            confidence=scores[keep],
            class_id=np.asarray(detections.class_ids, dtype=int).reshape(-1)[keep],
            data={"index": keep},
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            tracked = self._tracker.update_with_detections(sv_dets)
        index = np.asarray(tracked.data.get("index", np.zeros(0, int)), dtype=int)
        track_ids = np.asarray(tracked.tracker_id, dtype=int).reshape(-1)
        class_ids = np.asarray(detections.class_ids, dtype=int)[index]
        voted = np.empty_like(class_ids)
        for k, (tid, cid) in enumerate(zip(track_ids.tolist(), class_ids.tolist())):
            votes = self.class_votes_.setdefault(tid, Counter())
            votes[cid] += 1
            voted[k] = votes.most_common(1)[0][0]
        boxes_out = np.asarray(detections.boxes, dtype=float)[index].reshape(-1, 4)
        scores_out = np.asarray(detections.scores, dtype=float)[index]
        c_boxes, c_scores, c_ids = self._coasting(frame_size)
        return TrackedObjects(
            boxes=np.concatenate([boxes_out, c_boxes]),
            scores=np.concatenate([scores_out, c_scores]),
            class_ids=np.concatenate([voted, [self.class_votes_[tid].most_common(1)[0][0] for tid in c_ids]]).astype(int),
            class_names=tuple(detections.class_names),
            track_ids=np.concatenate([track_ids, c_ids]).astype(int),
            coasted=np.arange(len(track_ids) + len(c_ids)) >= len(track_ids),
        )

    def _coasting(self, frame_size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes, last scores and ids of the lost tracks to report at their predicted boxes.

        ByteTrack's lost tracks were Kalman-predicted to this frame during the update.
        ``supervision`` does not offer them through its public API, so they are read from its
        tracker's ``lost_tracks`` (and their ``external_track_id``, ``frame_id``, ``tlbr`` and
        ``score``); a version without those coasts nothing, and a test holds the installed one.
        """
        none = np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int)
        if self.coast_frames <= 0:
            return none
        tracker = self._tracker
        boxes, scores, ids = [], [], []
        for track in getattr(tracker, "lost_tracks", []):
            tid = int(getattr(track, "external_track_id", -1))
            missed = tracker.frame_id - track.frame_id
            if tid < 0 or tid not in self.class_votes_ or not 0 < missed <= self.coast_frames:
                continue
            box = np.asarray(track.tlbr, dtype=float) - self.pad_px * np.array([-1.0, -1.0, 1.0, 1.0])  # unpadded
            if not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
                continue
            if frame_size is not None:
                height, width = frame_size
                if not (0 <= (box[0] + box[2]) / 2 < width and 0 <= box[3] < height):  # the foot point
                    continue
            boxes.append(box)
            scores.append(float(track.score))
            ids.append(tid)
        if not ids:
            return none
        order = np.argsort(ids)
        return np.array(boxes)[order], np.array(scores)[order], np.array(ids, dtype=int)[order]


@dataclass(frozen=True)
class GroundVelocity:
    """Velocity of a track over the ground.

    Attributes:
        lateral_mps: Rate of change of the lateral offset, m/s (right positive); 0 when not
            significant.
        along_mps: Velocity along the track over the ground, m/s (positive: away from the
            train), i.e. the slope of the distance ahead plus the train's speed; 0 when not
            significant.
        speed_mps: Length of the velocity, m/s.
        samples: Ground positions the fit used (fewer than 3: no estimate, speed 0).
        span_s: Time between the first and last of them, s.
        lateral_se_mps: Standard error of the lateral slope, m/s (NaN without an estimate).
        along_se_mps: Standard error of the along-track slope, m/s (NaN without an estimate).
    """

    lateral_mps: float
    along_mps: float
    speed_mps: float
    samples: int
    span_s: float
    lateral_se_mps: float = float("nan")
    along_se_mps: float = float("nan")


# two-sided 99% quantiles of Student's t for 1..10 degrees of freedom
_T99 = (63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169)


def _t99(dof: int) -> float:
    """Two-sided 99% quantile of Student's t with ``dof`` degrees of freedom (within 1% beyond 10)."""
    return _T99[dof - 1] if dof <= len(_T99) else 2.576 + 5.5 / dof


def ground_velocity(
    times_s: np.ndarray,
    offsets_m: np.ndarray,
    distances_m: np.ndarray,
    train_speed_mps: float = 0.0,
    significant_only: bool = True,
) -> GroundVelocity:
    """Velocity over the ground from a track's recent ground positions, by least squares.

    Fits ``x(t) = x0 + v_x t`` and ``d(t) = d0 + v_d t`` in one ``numpy.linalg.lstsq`` call
    (times centred on their mean), so every sample counts and the slope's noise falls as
    ``sigma / (dt sqrt(n (n^2 - 1) / 12))`` for ``n`` samples ``dt`` apart. The camera moves
    with the train: a still object's distance falls at the train's speed, so the velocity
    along the track over the ground is ``v_d + v_train``; the speed is the length of
    ``(v_x, v_d + v_train)``.

    Gauge ranging is far noisier than the lateral offset: a pixel at the foot row moves the
    distance by about ``d^2 / (f h)`` (0.9 m at 40 m with the scene camera) but the offset by
    ``d / f`` (5 cm), so over half a second the along-track slope of a still object is often
    off by 1-2 m/s. With ``significant_only`` each component is kept only where it differs
    from zero at 99% confidence (``|v| > t_{0.995, n-2} * SE``, the standard error from the
    fit's residuals), and counts as 0 otherwise: a walk across the track (offsets good to a
    few centimetres) or a drive along it stands far above its error and is kept, while the
    along-track speed of a person walking towards the train 40 m away is lost in the ranging
    noise and reads 0.

    Args:
        times_s: Sample times, s, ``(n,)``.
        offsets_m: Lateral offsets from the track centre, m, ``(n,)``.
        distances_m: Distances ahead, m, ``(n,)``.
        train_speed_mps: Speed of the train carrying the camera, m/s.
        significant_only: Zero the components that do not differ from zero at 99% confidence.

    Returns:
        A :class:`GroundVelocity`; with fewer than three samples, or all at one time, all zero.

    Example:
        >>> t = np.arange(5) * 0.1
        >>> v = ground_velocity(t, 1.5 * t - 2.0, 40.0 - 10.0 * t, train_speed_mps=10.0)
        >>> round(v.lateral_mps, 6), round(v.along_mps, 6), round(v.speed_mps, 6)
        (1.5, 0.0, 1.5)
    """
    t = np.asarray(times_s, dtype=float).reshape(-1)
    n = t.size
    span = float(t.max() - t.min()) if n else 0.0
    if n < 3 or span <= 0:
        return GroundVelocity(0.0, 0.0, 0.0, n, span)
    centred = t - t.mean()
    design = np.column_stack([centred, np.ones(n)])
    targets = np.column_stack([np.asarray(offsets_m, dtype=float), np.asarray(distances_m, dtype=float)])
    coef, *_ = np.linalg.lstsq(design, targets, rcond=None)
    residuals = targets - design @ coef
    se = np.sqrt((residuals**2).sum(axis=0) / (n - 2) / (centred**2).sum())
    velocity = np.array([coef[0, 0], coef[0, 1] + train_speed_mps])
    if significant_only:
        velocity = np.where(np.abs(velocity) > _t99(n - 2) * se, velocity, 0.0)
    lateral, along = float(velocity[0]), float(velocity[1])
    return GroundVelocity(lateral, along, float(np.hypot(lateral, along)), n, span, float(se[0]), float(se[1]))


class GroundHistory:
    """Recent ground positions of every track, and their velocity over the ground.

    Args:
        window_s: Speed is fitted over the samples of the last ``window_s`` seconds.
        train_speed_mps: Speed of the train carrying the camera, m/s.
    """

    def __init__(self, window_s: float = 0.5, train_speed_mps: float = 0.0) -> None:
        self.window_s = window_s
        self.train_speed_mps = train_speed_mps
        self.samples_: dict[int, deque[tuple[float, float, float]]] = {}

    def add(self, track_id: int, time_s: float, offset_m: float, distance_m: float) -> None:
        """Record where track ``track_id`` stood at ``time_s``: offset and distance in metres."""
        samples = self.samples_.setdefault(int(track_id), deque())
        samples.append((float(time_s), float(offset_m), float(distance_m)))
        self._prune(samples, time_s)

    def _prune(self, samples: deque[tuple[float, float, float]], now_s: float) -> None:
        while samples and samples[0][0] < now_s - self.window_s - 1e-9:
            samples.popleft()

    def velocity(self, track_id: int, now_s: float) -> GroundVelocity:
        """Velocity of ``track_id`` fitted to its samples from ``now_s - window_s`` to ``now_s``."""
        samples = self.samples_.get(int(track_id))
        if samples:
            self._prune(samples, now_s)
        if not samples:
            return GroundVelocity(0.0, 0.0, 0.0, 0, 0.0)
        t, x, d = (np.array(column) for column in zip(*samples))
        return ground_velocity(t, x, d, self.train_speed_mps)

    def position(self, track_id: int, now_s: float) -> tuple[float, float] | None:
        """Smoothed ``(offset_m, distance_m)`` of ``track_id`` at ``now_s``.

        The least-squares lines of :func:`ground_velocity`, evaluated at ``now_s``: unbiased
        for an object moving at constant velocity, and about half as noisy as one frame's
        reading (25 fps, 0.5 s). ``None`` with fewer than three samples in the window.
        """
        samples = self.samples_.get(int(track_id))
        if samples:
            self._prune(samples, now_s)
        if not samples or len(samples) < 3:
            return None
        t, x, d = (np.array(column) for column in zip(*samples))
        if t.max() <= t.min():
            return None
        design = np.column_stack([t - t.mean(), np.ones(t.size)])
        coef, *_ = np.linalg.lstsq(design, np.column_stack([x, d]), rcond=None)
        at = np.array([now_s - t.mean(), 1.0]) @ coef
        return float(at[0]), float(at[1])

    def forget(self, now_s: float) -> None:
        """Drop tracks with no sample in the window ending at ``now_s``."""
        for tid in [tid for tid, s in self.samples_.items() if not s or s[-1][0] < now_s - self.window_s]:
            del self.samples_[tid]
