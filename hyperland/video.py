"""Video in, tracks out: decode a video in bounded batches of frames, predict landmarks on every frame with a
fitted :class:`~hyperland.heads.LandmarkHead`, smooth the tracks (:mod:`hyperland.smoothing`) and draw them into a
new video.

Decoding and encoding use PyAV (FFmpeg bundled in its wheels), the optional extra ``hyperland[video]``.

Memory stays bounded whatever the video's length: :func:`iter_frames` decodes ``batch_size`` frames, yields them
and keeps no reference to them afterwards, :func:`track` predicts each batch before the next is decoded, and
:func:`write_overlay` decodes, draws and encodes batch by batch. Only the tracks grow with the length (12 bytes
per landmark and frame).

Frame indices count decoded frames from 0 (``start``/``stop``/``step`` select them like ``range``); time stamps
are the frames' presentation times in seconds from the stream's start (``index / fps`` when a frame has none).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import numpy as np
from PIL import Image

from .errors import InvalidImageError, InvalidOptionError, MissingDependencyError, optional_import
from .smoothing import Smoothing, parse_smoothing, smooth_points

if TYPE_CHECKING:
    from .heads import LandmarkHead

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm"}
_CODECS = {"webm": ("libvpx-vp9", "libvpx")}  # every other container: H.264, else MPEG-4 part 2
DEFAULT_BATCH = 32


def is_video(path: Any) -> bool:
    """True for a path whose suffix is a video container's (:data:`VIDEO_SUFFIXES`, any case)."""
    return isinstance(path, (str, os.PathLike)) and Path(path).suffix.lower() in VIDEO_SUFFIXES


def require_av() -> Any:
    """The ``av`` module (PyAV), or a MissingDependencyError that says how to install it."""
    return optional_import("av", needed_for="Reading and writing video", name="PyAV", extra="video", package="av")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says of its first video stream."""

    fps: float  # average frame rate (NaN when the container gives none)
    n_frames: int | None  # frame count from the header (None when unknown; a hint, not a promise)
    width: int
    height: int


class FrameBatch(NamedTuple):
    """Consecutive selected frames: their indices, time stamps (s) and (H, W, 3) uint8 RGB pixels."""

    indices: list[int]
    times: list[float]
    frames: list[np.ndarray]


@dataclass(frozen=True)
class Tracks:
    """Landmarks over the frames of a video: ``points`` (T, K, 2) pixels, ``confidence`` (T, K) in [0, 1] (None
    for the regressor head), ``frames`` (T,) frame indices, ``times`` (T,) seconds, the stream's ``fps`` and the
    head's ``landmark_names`` (empty when it has none)."""

    points: np.ndarray
    confidence: np.ndarray | None
    frames: np.ndarray
    times: np.ndarray
    fps: float
    landmark_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frames)


def _open(av: Any, path: str | os.PathLike) -> tuple[Any, Any]:
    """(container, first video stream) of ``path``, with clear errors for a missing or undecodable file."""
    p = Path(path)
    if not p.is_file():
        raise InvalidImageError(f"Video file not found: '{p}'. Check the path (relative paths start at {Path.cwd()}).")
    try:
        container = av.open(str(p))
    except av.FFmpegError as exc:
        raise InvalidImageError(f"'{p}' is not a video FFmpeg can read ({exc}). Re-encode it (e.g. to H.264 MP4) "
                                "or check that the file is complete.") from exc
    if not container.streams.video:
        container.close()
        raise InvalidImageError(f"'{p}' has no video stream (streams: {[s.type for s in container.streams]}). "
                                "Expected a file with at least one video stream.")
    return container, container.streams.video[0]


def _fps(stream: Any) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else float("nan")


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame rate, frame count (from the header) and size of the first video stream of ``path``."""
    container, stream = _open(require_av(), path)
    try:
        return VideoInfo(fps=_fps(stream), n_frames=int(stream.frames) or None, width=int(stream.width),
                         height=int(stream.height))
    finally:
        container.close()


def check_range(*, batch_size: int, start: int, stop: int | None, step: int) -> None:
    """Refuse a batch size or frame range that selects nothing sensible, naming the keyword and the fix."""
    for name, value, low in (("batch_size", batch_size, 1), ("start", start, 0), ("step", step, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise InvalidOptionError(f"{name}={value!r}: expected an integer >= {low}.")
    if stop is not None and (not isinstance(stop, (int, np.integer)) or isinstance(stop, bool) or stop <= start):
        raise InvalidOptionError(f"stop={stop!r} with start={start}: expected an integer > start (frame indices, "
                                 "like range(start, stop, step)), or None for the end of the video.")


def iter_frames(path: str | os.PathLike, *, batch_size: int = DEFAULT_BATCH, start: int = 0,
                stop: int | None = None, step: int = 1) -> Iterator[FrameBatch]:
    """Decode the frames ``range(start, stop, step)`` of the first video stream (``stop=None``: to the end) and
    yield them ``batch_size`` at a time as :class:`FrameBatch` (the last batch may be shorter). The generator
    drops each batch once it is yielded, so the caller holds at most one batch; frames before ``start`` are
    decoded but not converted (exact indices also in streams without reliable seeking)."""
    check_range(batch_size=batch_size, start=start, stop=stop, step=step)
    av = require_av()
    container, stream = _open(av, path)
    stream.thread_type = "AUTO"
    t0, tb, fps = stream.start_time or 0, stream.time_base, _fps(stream)
    batch, decoded = FrameBatch([], [], []), 0
    try:
        for i, frame in enumerate(container.decode(stream)):
            decoded = i + 1
            if stop is not None and i >= stop:
                break
            if i < start or (i - start) % step:
                continue
            t = float((frame.pts - t0) * tb) if frame.pts is not None and tb else i / fps
            batch.indices.append(i)
            batch.times.append(t)
            batch.frames.append(frame.to_ndarray(format="rgb24"))
            if len(batch.indices) == batch_size:
                yield batch
                batch = FrameBatch([], [], [])
        if batch.indices:
            yield batch
    except av.FFmpegError as exc:
        raise InvalidImageError(f"'{path}': cannot decode video after {decoded} frame(s) ({exc}). "
                                "The file may be truncated or corrupt.") from exc
    finally:
        container.close()


def _selected(n_frames: int | None, *, start: int, stop: int | None, step: int) -> int | None:
    """How many frames ``range(start, stop, step)`` selects of a video of ``n_frames`` (None when unknown)."""
    end = stop if n_frames is None else min(n_frames, stop if stop is not None else n_frames)
    return None if end is None else len(range(start, end, step))


def _no_frames(video: str | os.PathLike, *, start: int, stop: int | None, step: int, n_frames: int | None) -> NoReturn:
    raise InvalidOptionError(f"start={start}, stop={stop}, step={step} select no frame of '{video}' "
                             f"({n_frames or 'an unknown number of'} frames). Choose a start below its length.")


def track(head: LandmarkHead, video: str | os.PathLike, *, batch_size: int = DEFAULT_BATCH, start: int = 0,
          stop: int | None = None, step: int = 1, smooth: str | Smoothing | None = None,
          min_confidence: float | None = None, progress: bool | None = None) -> Tracks:
    """Landmarks of ``head`` on the frames ``range(start, stop, step)`` of ``video``, predicted ``batch_size``
    frames at a time; ``smooth`` (e.g. ``"savgol:9"``, ``"oneeuro"``: :mod:`hyperland.smoothing`) filters them over
    time, replacing points below ``min_confidence`` (None: a quarter of the landmark's median confidence) by their
    confident neighbours first. ``progress``: a tqdm bar
    over frames (None: on a terminal only)."""
    from tqdm.auto import tqdm

    spec = None if smooth is None else parse_smoothing(smooth)  # a bad spec fails before any decoding
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise InvalidOptionError(f"min_confidence={min_confidence}: expected a confidence in [0, 1].")
    info = video_info(video)
    check_range(batch_size=batch_size, start=start, stop=stop, step=step)
    if info.n_frames is not None and start >= info.n_frames:  # the header's count: spare decoding it all
        _no_frames(video, start=start, stop=stop, step=step, n_frames=info.n_frames)
    with_conf = head.method in ("ridge", "prototype")
    pts: list[np.ndarray] = []
    conf: list[np.ndarray] = []
    frames: list[int] = []
    times: list[float] = []
    bar = tqdm(total=_selected(info.n_frames, start=start, stop=stop, step=step), unit="frame", desc="track",
               disable=None if progress is None else not progress, leave=False)
    saved, head.progress = head.progress, False  # one bar over frames, not one per batch
    try:
        for batch in iter_frames(video, batch_size=batch_size, start=start, stop=stop, step=step):
            images = [Image.fromarray(f) for f in batch.frames]  # PIL: the model shrinks them before float
            out = head.predict(images, return_confidence=with_conf)
            p, c = out if with_conf else (out, None)
            pts.append(np.asarray(p, np.float32))
            if c is not None:
                conf.append(np.asarray(c, np.float32))
            frames += batch.indices
            times += batch.times
            bar.update(len(batch.indices))
    finally:
        head.progress = saved
        bar.close()
    if not frames:
        _no_frames(video, start=start, stop=stop, step=step, n_frames=info.n_frames)
    points = np.concatenate(pts)
    confidence = np.concatenate(conf) if with_conf else None
    names = tuple(str(n) for n in getattr(head, "landmark_names_", None) or ())
    t = np.asarray(times, np.float64)
    logger.info("Tracked %d frames (%d..%d) of %s.", len(frames), frames[0], frames[-1], video)
    if spec is not None:
        points = smooth_points(points, confidence, spec=spec, times=t, min_confidence=min_confidence)
    return Tracks(points=points, confidence=confidence, frames=np.asarray(frames, np.int64), times=t, fps=info.fps,
                  landmark_names=names)


def overlay_encoder(out: str | os.PathLike) -> tuple[str, str]:
    """(container format, codec) for an overlay video at ``out``; an unsupported suffix is refused here, before any
    tracking."""
    av, out = require_av(), Path(out)
    fmt = _CONTAINERS.get(out.suffix.lower())
    if fmt is None:
        raise InvalidOptionError(f"overlay='{out}': cannot write a '{out.suffix}' video. Expected a file ending in "
                                 f"{', '.join(_CONTAINERS)}.")
    for codec in _CODECS.get(fmt, ("libx264", "mpeg4")):
        if codec in av.codecs_available:
            return fmt, codec
    raise MissingDependencyError(f"This FFmpeg build has none of the encoders {_CODECS.get(fmt)} for '{out}'. "
                                 "Write an .mp4 overlay, or install the PyAV wheel (pip install av).")


def write_overlay(video: str | os.PathLike, tracks: Tracks, out: str | os.PathLike, *,
                  batch_size: int = DEFAULT_BATCH, progress: bool | None = None) -> Path:
    """Write ``out`` (.mp4, .mov, .mkv, .avi or .webm): the frames of ``video`` that ``tracks`` covers with its
    points drawn (:func:`hyperland.viz.draw_landmarks`), at the source's frame rate divided by the frames' step.
    Streams (decode, draw, encode ``batch_size`` frames at a time) and writes atomically. H.264 needs even sides:
    an odd last row or column is dropped."""
    from tqdm.auto import tqdm

    from ._io import AtomicFile, output_error
    from .viz import draw_landmarks

    av, dst = require_av(), Path(out)
    fmt, codec = overlay_encoder(dst)
    if len(tracks) == 0:
        raise InvalidOptionError("write_overlay: the tracks hold no frame. Track at least one frame first.")
    frames = tracks.frames
    step = int(frames[1] - frames[0]) if len(frames) > 1 else 1
    if len(frames) > 1 and not (np.diff(frames) == step).all():
        raise InvalidOptionError("write_overlay: the tracks' frames are not evenly spaced. Pass tracks from track().")
    row_of = {int(f): r for r, f in enumerate(frames)}
    info = video_info(video)
    rate = Fraction(info.fps / step).limit_denominator(1_000_000) if np.isfinite(info.fps) else Fraction(30)
    w, h = info.width - info.width % 2, info.height - info.height % 2
    bar = tqdm(total=len(frames), unit="frame", desc="overlay", disable=None if progress is None else not progress,
               leave=False)
    target = AtomicFile(dst)
    try:
        with av.open(target.file, mode="w", format=fmt) as container:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            if codec == "libx264":
                stream.options = {"preset": "veryfast"}  # 3x faster than the default 'medium'; a preview
            for batch in iter_frames(video, batch_size=batch_size, start=int(frames[0]), stop=int(frames[-1]) + 1,
                                     step=step):
                for i, rgb in zip(batch.indices, batch.frames):
                    drawn = draw_landmarks(rgb[:h, :w], tracks.points[row_of[i]])
                    for packet in stream.encode(av.VideoFrame.from_ndarray(drawn, format="rgb24")):
                        container.mux(packet)
                bar.update(len(batch.indices))
            for packet in stream.encode():  # flush the encoder
                container.mux(packet)
    except OSError as exc:  # a full disk or a vanished folder, as the writers of every other output say it
        target.abort()
        raise output_error(dst, exc) from exc
    except BaseException:
        target.abort()
        raise
    finally:
        bar.close()
    return target.commit()


__all__ = ["DEFAULT_BATCH", "VIDEO_SUFFIXES", "FrameBatch", "Tracks", "VideoInfo", "check_range", "is_video",
           "iter_frames", "overlay_encoder", "require_av", "track", "video_info", "write_overlay"]
