"""Producing the anonymized face: face masks, the classic methods (blur, pixelate, solid), and a face
regenerated from a donor (:mod:`.transplant`, :mod:`.regenerate`) or blurred (:mod:`.blurred`)."""

from lookalike.synthesis.classic import CLASSIC_METHODS, ClassicParams, apply_classic
from lookalike.synthesis.masks import DEFAULT_MASK_SCALE, Ellipse, ellipse_mask, face_ellipse

__all__ = [
    "CLASSIC_METHODS",
    "ClassicParams",
    "DEFAULT_MASK_SCALE",
    "Ellipse",
    "apply_classic",
    "ellipse_mask",
    "face_ellipse",
]
