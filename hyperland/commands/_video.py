"""``hyperland predict`` on a video: the video flags and the run that tracks landmarks frame by frame
(:mod:`hyperland.video`). ``predict`` dispatches here when its input is one video file (by suffix)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..errors import InvalidOptionError

_FLAGS = {"start": "--start", "stop": "--stop", "step": "--step", "batch_size": "--batch-size", "smooth": "--smooth",
          "min_confidence": "--min-confidence", "overlay": "--overlay"}


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    """The flags that apply to a video input (all default to None: given with images, they are an error)."""
    from ..smoothing import DEFAULT_WINDOW, RELATIVE_CONFIDENCE, SPEC_HELP

    g = p.add_argument_group("video input (one .mp4, .avi, .mov, .mkv, .webm, ... file; needs hyperland[video])")
    g.add_argument("--start", type=int, default=None, metavar="N", help="first frame index (default 0)")
    g.add_argument("--stop", type=int, default=None, metavar="N", help="stop before this frame (default: the end)")
    g.add_argument("--step", type=int, default=None, metavar="N", help="every N-th frame (default 1)")
    g.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="frames decoded and predicted at once; memory grows with it, not with the video (default 32)")
    g.add_argument("--smooth", default=None, metavar="SPEC",
                   help=f"temporal smoothing: {SPEC_HELP} (savgol window default {DEFAULT_WINDOW} frames)")
    g.add_argument("--min-confidence", type=float, default=None, metavar="C",
                   help=f"with --smooth: points below this confidence are interpolated from confident neighbours "
                        f"first (default: {RELATIVE_CONFIDENCE} x the landmark's median confidence in the video)")
    g.add_argument("--overlay", default=None, metavar="OUT.mp4", help="also write the video with the points drawn")


def wants_video(args: argparse.Namespace) -> bool:
    """True when ``args.images`` is one video; a video among other inputs, or video flags without a video, is an
    InvalidOptionError that says what to pass instead."""
    from ..video import is_video

    videos = [x for x in args.images if is_video(x)]
    if not videos:
        given = [flag for name, flag in _FLAGS.items() if getattr(args, name, None) is not None]
        if given:
            raise InvalidOptionError(f"{', '.join(given)} apply to a video input only; got images "
                                     f"({', '.join(args.images[:3])}{', ...' if len(args.images) > 3 else ''}). "
                                     "Drop the flag(s), or pass one video file.")
        return False
    if len(args.images) != 1:
        raise InvalidOptionError(f"predict takes one video at a time, without images; got {len(args.images)} inputs "
                                 f"({', '.join(args.images[:3])}{', ...' if len(args.images) > 3 else ''}). Run it "
                                 "once per video.")
    if args.min_confidence is not None and args.smooth is None:
        raise InvalidOptionError("--min-confidence only matters with --smooth. Add --smooth savgol (or oneeuro), or "
                                 "drop --min-confidence.")
    return True


def run_video(args: argparse.Namespace, render: Callable[..., str]) -> int:
    """Track the video of ``args.images`` and write the rows rendered by ``render(keys, points, confidence,
    labels)`` (predict's CSV or JSON renderer) to ``--out`` or stdout; also ``--overlay`` when given."""
    from .._io import atomic_write_text, check_writable
    from ..smoothing import parse_smoothing
    from ..video import DEFAULT_BATCH, check_range, overlay_encoder, track, video_info, write_overlay
    from ._args import landmark_labels, load_head, progress

    def given(value: int | None, default: int) -> int:
        return default if value is None else value

    video = args.images[0]
    video_info(video)  # a missing or unreadable file (or no PyAV) fails before the head loads
    opts = {"start": given(args.start, 0), "stop": args.stop, "step": given(args.step, 1),
            "batch_size": given(args.batch_size, DEFAULT_BATCH)}
    check_range(**opts)
    smooth = None if args.smooth is None else parse_smoothing(args.smooth)
    for flag, path in (("--out", args.out), ("--overlay", args.overlay)):
        if path:
            check_writable(path, flag=flag)
    if args.overlay:
        overlay_encoder(args.overlay)
    head = load_head(args)
    tracks = track(head, video, smooth=smooth, min_confidence=args.min_confidence, progress=progress(args), **opts)
    if args.overlay:
        write_overlay(video, tracks, args.overlay, batch_size=opts["batch_size"], progress=progress(args))
    keys = [{"frame": int(f), "time_s": round(float(t), 6)} for f, t in zip(tracks.frames, tracks.times)]
    labels = landmark_labels(tracks.landmark_names, int(tracks.points.shape[1]))
    text = render(keys, tracks.points, tracks.confidence, labels)
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


__all__ = ["add_video_arguments", "run_video", "wants_video"]
