"""Face detection: CenterFace via onnxruntime, with tiling for small faces and optional rotations.

>>> import skimage.data
>>> from lookalike.detection import detect_faces
>>> faces = detect_faces(skimage.data.astronaut())
>>> round(faces[0].score, 1) > 0.5
True
"""

from lookalike.detection.centerface import CenterFaceDetector, DetectorConfig, detect_faces, nms, to_rgb

__all__ = ["CenterFaceDetector", "DetectorConfig", "detect_faces", "nms", "to_rgb"]
