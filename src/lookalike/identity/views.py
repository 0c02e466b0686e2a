"""The ways an attacker may cut a face out before embedding it: a family of *views* of one face.

A check that embeds an anonymized face only the way the closed loop aligns it is fooled by whatever
slipped past that one pipeline by chance (the first candidate that passes is selected for luck). An
attacker knows where the face was, but crops it their own way: another alignment, a looser or tighter
box, a mirror image, a re-encoded copy. :data:`VIEWS` are those ways; :func:`view_embeddings` embeds a
face under each, batched per recognizer, so a check can take the worst.

Every view is applied alike to the original and to the anonymized face (an attacker's gallery is
processed by the same pipeline as the probe).

>>> [view.name for view in VIEWS]
['aligned', 'mirrored', 'jpeg75', 'box', 'shifted']
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from lookalike.types import Face


@dataclass(frozen=True)
class View:
    """One way to cut a face out.

    box_scale : the detector box grown (>1) or shrunk (<1) about its centre, with the keypoints moved by
        ``shift`` of the box width to the right and down, and scaled about the box centre by ``box_scale``
        too (a detector that sits a little differently on the face).
    keypoints : False drops the 5 keypoints: the recognizer falls back to its box crop (an attacker
        without a landmark detector).
    mirror : the aligned crop flipped left to right.
    jpeg : re-encode the image at this JPEG quality first (0: no).
    """

    name: str
    box_scale: float = 1.0
    shift: float = 0.0
    keypoints: bool = True
    mirror: bool = False
    jpeg: int = 0

    def face(self, face: Face) -> Face:
        """``face`` as this view's detector would report it."""
        if self.box_scale == 1.0 and self.shift == 0.0 and self.keypoints:
            return face
        box = np.asarray(face.box, np.float64)
        centre = (box[:2] + box[2:]) / 2
        width = box[2] - box[0]
        moved = centre + self.shift * width
        corners = moved + (box.reshape(2, 2) - centre) * self.box_scale
        keypoints = (
            np.full((5, 2), np.nan, np.float32)
            if not self.keypoints
            else (moved + (np.asarray(face.keypoints, np.float64) - centre) * self.box_scale).astype(np.float32)
        )
        return replace(face, box=corners.reshape(4).astype(np.float32), keypoints=keypoints)

    def image(self, image: np.ndarray) -> np.ndarray:
        if not self.jpeg:
            return image
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg]
        )
        return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if ok else image


#: The views every check takes, the loop's own alignment first.
#: Every view an attacker may take (``benchmarks/bench_attack.py`` measures protection under each).
VIEWS: tuple[View, ...] = (
    View("aligned"),
    View("mirrored", mirror=True),
    View("jpeg75", jpeg=75),
    View("box", box_scale=1.1, keypoints=False),
    View("shifted", box_scale=1.08, shift=0.03),
)

#: The views the closed loop checks every candidate under at the low and medium privacy levels: the
#: alignment a recognizer is built for, its mirror image and a re-encoded copy. The box crops ("box",
#: "shifted") are checked only at the high level: a box crop of the same photo holds the person's hair,
#: outline and background, which the method keeps on purpose, and on development faces 0401-0412 no
#: lookalike passed them unblurred (12 of 12 fell back, 4 to a solid fill; docs/benchmarks.md).
CHECKED_VIEWS: tuple[View, ...] = VIEWS[:3]


def views_named(names: tuple[str, ...]) -> tuple[View, ...]:
    """The views of :data:`VIEWS` called ``names``, in that order.

    >>> [view.name for view in views_named(("box", "aligned"))]
    ['box', 'aligned']
    """
    by_name = {view.name: view for view in VIEWS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown view {unknown[0]!r}; choose from {', '.join(by_name)}")
    return tuple(by_name[n] for n in names)


def view_embeddings(
    recognizer, image: np.ndarray, face: Face, reference: np.ndarray | None = None, views: tuple[View, ...] = VIEWS
) -> np.ndarray:
    """(len(views), d) embeddings of ``face`` in ``image`` under each view, in one batch.

    ``reference``: the untouched image whose face geometry decides where landmark-based recognizers cut
    (as in :meth:`~lookalike.identity.base.Recognizer.align`); it gets the same re-encoding as ``image``.
    """
    chips = []
    for view in views:
        seen = view.image(image)
        geometry = None if reference is None else (reference if not view.jpeg else view.image(reference))
        chip = recognizer.align(seen, view.face(face), reference=geometry)
        chips.append(np.ascontiguousarray(chip[:, ::-1]) if view.mirror else chip)
    return recognizer.embed_aligned(np.stack(chips))


__all__ = ["CHECKED_VIEWS", "VIEWS", "View", "view_embeddings", "views_named"]
