"""Dense landmarks (478 FaceMesh points), named facial regions, the partition of the face into regions
(:mod:`~lookalike.landmarks.partition`, what saliency ranks and synthesis regenerates) and head pose."""

from lookalike.landmarks.facemesh import FaceMeshLandmarker, LandmarkConfig, add_landmarks, default_landmarker
from lookalike.landmarks.mesh import mesh_neighbours, mesh_triangles
from lookalike.landmarks.partition import CANONICAL_ORDER, FEATURE_OF, FEATURES, SALIENCY_REGIONS, region_labels
from lookalike.landmarks.pose import head_pose
from lookalike.landmarks.regions import REGION_NAMES, REGIONS, region_mask, region_polygon

__all__ = [
    "CANONICAL_ORDER",
    "FEATURES",
    "FEATURE_OF",
    "SALIENCY_REGIONS",
    "region_labels",
    "FaceMeshLandmarker",
    "LandmarkConfig",
    "REGIONS",
    "REGION_NAMES",
    "add_landmarks",
    "default_landmarker",
    "head_pose",
    "mesh_neighbours",
    "mesh_triangles",
    "region_mask",
    "region_polygon",
]
