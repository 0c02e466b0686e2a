"""Blurred lookalikes: a regenerated face blurred inside, around, or both, for the loop's first fallback.

A lightly blurred lookalike is still a face to a viewer and to a detector; a blurred person is not. The
loop tries the blurs of :data:`LOOKALIKE_BLURS` in order on its closest failing candidates
(:class:`BlurredLookalike`) and keeps the first that its check passes.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from lookalike.imaging import blend_under_mask, gaussian_blur
from lookalike.landmarks.partition import SALIENCY_REGIONS, region_labels
from lookalike.synthesis.regenerate import Regeneration


class LookalikeBlur(NamedTuple):
    """One blur of the blurred-lookalike fallback: sigmas as fractions of the face's width."""

    face: float  #: inside the lookalike's changed pixels
    around: float = 0.0  #: around the face: hair line, ears, near background
    sharp_features: bool = False  #: the lookalike's eyes, brows and mouth left out of the blur inside

    def describe(self) -> str:
        """The blur in words, for the face's record."""
        inside = "the face itself unblurred" if not self.face else f"sigma {self.face:g} of the face width"
        if self.face and self.sharp_features:
            inside += " but for its eyes, brows and mouth"
        return (
            inside if not self.around else f"{inside}, and sigma {self.around:g} around it: hair line and surroundings"
        )


#: Blurs tried on the closest lookalikes before the face is blurred whole, in order. Blurs that keep the
#: face sharp or nearly so come before the strong ones inside it, which cost detection. The check is not
#: monotone in the blur (a stronger blur can land nearer the person), hence the many steps. Blurring
#: around the face is for the faces recognizers still find by what the lookalike keeps of the person:
#: the head's outline and hair. The strong blurs inside (all but the last step, a plain blur kept as the
#: final try before the whole face is blurred) keep the lookalike's eyes, brows and mouth (mostly the
#: donor's) sharp: what identifies is blurred, and what makes a face to a detector (and to a viewer) is
#: still there; the check judges the result as always.
LOOKALIKE_BLURS = (
    LookalikeBlur(0.02),
    LookalikeBlur(0.04),
    LookalikeBlur(0.04, 0.15),
    LookalikeBlur(0.07),
    LookalikeBlur(0.07, 0.2),
    LookalikeBlur(0.0, 0.3),
    LookalikeBlur(0.04, 0.3),
    LookalikeBlur(0.0, 0.5),
    LookalikeBlur(0.04, 0.5),
    LookalikeBlur(0.1, 0.0, True),
    LookalikeBlur(0.13, 0.0, True),
    LookalikeBlur(0.1, 0.3, True),
    LookalikeBlur(0.13, 0.3, True),
    LookalikeBlur(0.2, 0.3, True),
    LookalikeBlur(0.13, 0.3),
)

#: Left sharp by the strong blurs of :data:`LOOKALIKE_BLURS` that ask for it.
SHARP_FEATURES = ("right_eye", "left_eye", "right_eyebrow", "left_eyebrow", "mouth")


class BlurredLookalike:
    """One regenerated candidate pasted into its window, with the masks its blurs are blended under.

    ``window``: the RGB window the candidate was made for; ``face_width``: the face's width in pixels
    (every sigma is a fraction of it).
    """

    def __init__(self, window: np.ndarray, candidate: Regeneration, face_width: float) -> None:
        self.candidate = candidate
        x0, y0, x1, y1 = candidate.box
        self.window = candidate.paste(window)
        self.width = width = face_width
        self.changed = np.zeros(self.window.shape[:2], np.float32)
        self.changed[y0:y1, x0:x1] = candidate.mask
        self.inside = cv2.GaussianBlur(self.changed, (0, 0), 0.02 * width)
        labels = region_labels(self.window.shape, candidate.landmarks)
        features = np.isin(labels, [SALIENCY_REGIONS.index(r) for r in SHARP_FEATURES]).astype(np.uint8)
        features = cv2.dilate(
            features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * round(0.02 * width) + 1,) * 2)
        )
        self.inside_but_features = self.inside * (
            1.0 - cv2.GaussianBlur(features.astype(np.float32), (0, 0), 0.015 * width)
        )
        # around the face: fades in beyond the new face outline, and out towards the window's edge along a
        # rounded rectangle (a plain one shows as a blurred box around the head)
        off_face = (labels < 0).astype(np.uint8)
        height, wide = off_face.shape
        rows = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
        cols = np.linspace(-1.0, 1.0, wide, dtype=np.float32)[None, :]
        self.around = np.clip(cv2.distanceTransform(off_face, cv2.DIST_L2, 5) / (0.1 * width), 0.0, 1.0) * np.clip(
            (1.0 - (rows**4 + cols**4) ** 0.25) / 0.3, 0.0, 1.0
        )
        self._blurred: dict[float, np.ndarray] = {}  # several steps share a blur of the window

    def blur(self, step: LookalikeBlur) -> tuple[np.ndarray, np.ndarray]:
        """The window blurred as ``step`` says, and where it was blurred (0..1)."""
        out, weight = self.window, np.zeros_like(self.inside)
        if step.face:
            if step.face not in self._blurred:
                self._blurred[step.face] = gaussian_blur(self.window, step.face * self.width)
            weight = self.inside_but_features if step.sharp_features else self.inside
            out = blend_under_mask(self.window, self._blurred[step.face], weight)
        if step.around:
            out = blend_under_mask(out, gaussian_blur(out, step.around * self.width), self.around)
            weight = np.maximum(weight, self.around)
        return out, weight
