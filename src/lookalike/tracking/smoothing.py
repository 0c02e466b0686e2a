"""Landmarks smoothed over time, so masks and lookalikes do not jitter from frame to frame.

The video pipeline holds a few frames back before writing them, so the smoother can look both ways: a
local straight-line fit over the sure landmarks of the frames around each one (a Savitzky-Golay filter of
order one), evaluated at that frame. It has no lag for a face moving at constant speed, unlike a causal
filter (one-euro, Kalman), whose lag would leave the leading edge of a fast-moving face outside its mask;
and it averages out the landmark model's frame-to-frame noise (about the square root of the window's
frames). A window stops at a scene cut or a frame without landmarks (the track's observations only).

>>> points = {f: np.full((478, 3), float(f), np.float32) for f in range(5)}
>>> float(smooth_landmarks(points, 2, radius=2)[0, 0])
2.0
"""

from __future__ import annotations

import numpy as np

#: Frames on each side a landmark fit spans by default.
DEFAULT_RADIUS = 2


def smooth_landmarks(
    points: dict[int, np.ndarray], frame: int, radius: int = DEFAULT_RADIUS, max_step: float | None = None
) -> np.ndarray:
    """The landmarks at ``frame`` fitted over ``points`` (frame -> (N, 3) array) within ``radius`` frames.

    Only consecutive frames around ``frame`` count (a gap ends the window). ``max_step``: when the mean
    landmark step between two neighbouring frames exceeds it (a sudden jump: a turn of the head, a wrong
    fit), the window stops there, so a jump is followed at once rather than blurred over.
    """
    if frame not in points:
        raise KeyError(frame)
    window = [frame]
    for direction in (-1, 1):
        current = frame
        for _ in range(radius):
            nxt = current + direction
            if nxt not in points:
                break
            if max_step is not None and float(np.abs(points[nxt][:, :2] - points[current][:, :2]).mean()) > max_step:
                break
            window.append(nxt)
            current = nxt
    if len(window) < 3:
        return points[frame]
    frames = np.array(sorted(window), np.float64)
    stack = np.stack([points[int(f)] for f in frames]).astype(np.float64)
    t = frames - frame
    design = np.stack([np.ones_like(t), t], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, stack.reshape(len(frames), -1), rcond=None)
    return coefficients[0].reshape(points[frame].shape).astype(np.float32)
