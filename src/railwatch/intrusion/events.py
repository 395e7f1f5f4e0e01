"""Risk events with hysteresis: one event per real change of a tracked object's level.

A level read off one frame can flicker when an object stands near a zone edge or a Z threshold
(Table 4): II, III, II, III, ... Raising an alert on every flip would bury the driver. A
tracked object's level therefore changes, and raises one event, only once the new level has
been read in ``hold_frames`` consecutive frames of that object; the first level an object ever
holds counts as a change from "none". Frames in which the object has no level (no ego track,
foot row off the fitted rails) neither count nor break a run.

Pure Python; levels are any hashable labels (railwatch uses ``"I"`` .. ``"V"``).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class LevelChange:
    """A confirmed change of a tracked object's level.

    Attributes:
        track_id: The object's track id.
        previous: The level it held before, ``None`` at its first event.
        level: The level it holds now.
        frame: Frame at which the change was confirmed (the ``hold_frames``-th frame of the new level).
        since_frame: First frame of the run of the new level.
    """

    track_id: int
    previous: Hashable | None
    level: Hashable
    frame: int
    since_frame: int


@dataclass
class _TrackState:
    level: Hashable | None = None
    candidate: Hashable | None = None
    count: int = 0
    since: int = 0


class LevelHysteresis:
    """Confirm level changes of tracked objects after they hold for ``hold_frames`` frames.

    Args:
        hold_frames: Consecutive frames a new level must be read before it is confirmed (>= 1;
            1 confirms every change at once).

    Example:
        >>> h = LevelHysteresis(hold_frames=3)
        >>> [h.update(7, level, frame) is not None for frame, level in enumerate("IV IV IV III IV III".split())]
        [False, False, True, False, False, False]
        >>> h.level(7)
        'IV'
    """

    def __init__(self, hold_frames: int = 3) -> None:
        if hold_frames < 1:
            raise ValueError(f"hold_frames must be >= 1, got {hold_frames}")
        self.hold_frames = hold_frames
        self.states_: dict[int, _TrackState] = {}

    def level(self, track_id: int) -> Hashable | None:
        """The confirmed level of ``track_id`` (``None`` before its first event)."""
        state = self.states_.get(track_id)
        return None if state is None else state.level

    def update(self, track_id: int, level: Hashable | None, frame: int) -> LevelChange | None:
        """Read one frame's level of one tracked object.

        Args:
            track_id: The object's track id.
            level: Its level in this frame; ``None`` when it could not be graded (ignored).
            frame: The frame number.

        Returns:
            The :class:`LevelChange` confirmed by this frame, or ``None``.
        """
        if level is None:
            return None
        state = self.states_.setdefault(track_id, _TrackState())
        if level == state.level:
            state.candidate, state.count = None, 0
            return None
        if level == state.candidate:
            state.count += 1
        else:
            state.candidate, state.count, state.since = level, 1, frame
        if state.count < self.hold_frames:
            return None
        change = LevelChange(track_id, state.level, level, frame, state.since)
        state.level, state.candidate, state.count = level, None, 0
        return change

    def forget(self, track_id: int) -> None:
        """Drop a finished track's state."""
        self.states_.pop(track_id, None)
