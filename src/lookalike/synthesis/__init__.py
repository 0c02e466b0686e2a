"""Producing the anonymized face: masks and the classic methods (blur, pixelate, solid)."""
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
