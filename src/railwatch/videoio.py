"""Reading and writing video files with PyAV, with one-line errors that name the file.

Frames are ``(H, W, 3)`` uint8 RGB arrays both ways. :class:`VideoWriter` encodes H.264
(``libx264``) into an MP4, or MPEG-4 part 2 where this FFmpeg build has no H.264 encoder, into
a temporary file beside the target and renames it into place when it is closed, so a failed or
interrupted run leaves no half-written video.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from railwatch.errors import InputError
from railwatch.imageio import _UMASK

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts")
"""File suffixes treated as videos when a path may be a video or an image folder."""

_CODECS: tuple[str, ...] = ("libx264", "mpeg4")


def video_codec() -> str:
    """The encoder :class:`VideoWriter` uses: ``libx264`` (H.264) if FFmpeg has it, else ``mpeg4``.

    Raises:
        InputError: neither encoder is available.
    """
    import av

    for name in _CODECS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001 - PyAV raises different errors for unknown codecs across versions
            continue
        return name
    raise InputError(f"this FFmpeg build has none of the video encoders {', '.join(_CODECS)}")


class VideoReader:
    """Frames of a video file, decoded as RGB.

    Args:
        path: The video file.

    Attributes:
        fps: Average frame rate of the first video stream, frames per second (``None`` if unknown).
        frame_count: Frames the container declares (0 when it does not say).
        width: Frame width in px.
        height: Frame height in px.

    Raises:
        InputError: the file is missing, not a video FFmpeg can read, or has no video stream.
    """

    def __init__(self, path: str | Path) -> None:
        import av

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: video file not found")
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError, ValueError) as err:
            raise InputError(f"{self.path}: not a readable video ({type(err).__name__})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path}: no video stream in the file")
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.fps: float | None = float(rate) if rate else None
        self.frame_count: int = int(stream.frames or 0)
        self.width: int = int(stream.codec_context.width)
        self.height: int = int(stream.codec_context.height)
        self._stream = stream

    def __iter__(self) -> Iterator[np.ndarray]:
        import av

        try:
            for frame in self._container.decode(self._stream):
                yield frame.to_ndarray(format="rgb24")
        except (av.FFmpegError, OSError, ValueError) as err:
            raise InputError(f"{self.path}: video cannot be decoded ({type(err).__name__})") from None

    def close(self) -> None:
        """Release the file."""
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoWriter:
    """Encode RGB frames into a video file, written atomically.

    Frames go into a temporary file beside ``path``; :meth:`close` finishes the stream and
    renames it into place. Leaving the ``with`` block through an exception, or :meth:`abort`,
    deletes the temporary file instead. Odd frame sizes are padded by one edge row or column
    (the 4:2:0 encoders need even sizes).

    Args:
        path: The video file to write; the container follows its suffix (``.mp4`` usually).
        fps: Frames per second (> 0; fractional rates such as 29.97 are kept).
        codec: Encoder; ``None`` for :func:`video_codec`.
        crf: Constant rate factor of H.264 (lower is better quality); ignored by ``mpeg4``.
    """

    def __init__(self, path: str | Path, fps: float, codec: str | None = None, crf: int = 20) -> None:
        import av

        if not fps > 0:
            raise InputError(f"{path}: video frame rate must be > 0, got {fps}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.codec = codec or video_codec()
        self.fps = fps
        self._crf = crf
        fd, self._tmp = tempfile.mkstemp(prefix=".tmp-", suffix=self.path.suffix or ".mp4", dir=self.path.parent)
        os.close(fd)
        self._container = av.open(self._tmp, mode="w")
        self._stream = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame; every frame must have the first one's size."""
        import av

        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"{self.path}: video frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if self._stream is None:
            height, width = frame.shape[:2]
            self._size = (height, width)
            stream = self._container.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1001))
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            if self.codec == "libx264":
                stream.options = {"crf": str(self._crf)}
            else:
                stream.bit_rate = 8_000_000
            self._stream = stream
        if frame.shape[:2] != self._size:
            want_h, want_w = self._size  # type: ignore[misc]
            raise InputError(
                f"{self.path}: frame {self.frames} is {frame.shape[1]}x{frame.shape[0]} px, the video is {want_w}x{want_h}"
            )
        height, width = frame.shape[:2]
        if height % 2 or width % 2:
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        """Flush the encoder and move the finished file into place.

        Raises:
            InputError: no frame was written.
        """
        if self._stream is None:
            self.abort()
            raise InputError(f"{self.path}: no frames to write")
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        os.chmod(self._tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far."""
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - closing a half-initialised container may fail; the file goes anyway
            pass
        Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
