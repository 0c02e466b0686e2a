"""Identity saliency: which parts of each face carry its identity for face recognition.

Stage 1 of dynamic identity perception. :func:`identity_saliency` maps one face (pixel map and ranked
named regions of :mod:`lookalike.landmarks.partition`), :func:`identity_mask` turns a strength in [0, 1] into the
soft mask of the regions that carry that much of *this* face's identity. See :mod:`lookalike.saliency.core`
for the methods.
"""

from lookalike.saliency.core import (
    FaceWindow,
    IdentitySaliency,
    RegionScore,
    SaliencyConfig,
    face_window,
    identity_mask,
    identity_saliency,
    resolve_methods,
    select_regions,
)

__all__ = [
    "FaceWindow",
    "IdentitySaliency",
    "RegionScore",
    "SaliencyConfig",
    "face_window",
    "identity_mask",
    "identity_saliency",
    "resolve_methods",
    "select_regions",
]
