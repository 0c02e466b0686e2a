"""The face partition the saliency regions are drawn from."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.landmarks.mesh import mesh_triangles
from lookalike.landmarks.partition import SALIENCY_REGIONS, region_areas, region_labels, vertex_labels


@pytest.fixture(scope="module")
def face(astronaut):
    from lookalike.faces import detect

    return detect(astronaut)[0]


def test_every_mesh_vertex_but_the_irises_has_a_region():
    labels = vertex_labels()
    unlabelled = set(np.flatnonzero(labels < 0))
    assert unlabelled == set(range(468, 478))  # iris points are not part of the tessellation
    assert set(labels[labels >= 0]) == set(range(len(SALIENCY_REGIONS)))
    assert mesh_triangles().min() >= 0 and mesh_triangles().max() < 468


def test_regions_lie_where_their_features_are(astronaut, face):
    labels = region_labels(astronaut.shape, face.landmarks)
    areas = region_areas(labels)
    assert (areas > 0).all(), dict(zip(SALIENCY_REGIONS, areas))
    names = {"right_eye": face.keypoints[0], "left_eye": face.keypoints[1], "nose": face.keypoints[2]}
    for name, (x, y) in names.items():
        assert labels[int(round(y)), int(round(x))] == SALIENCY_REGIONS.index(name), name
    mouth = (face.keypoints[3] + face.keypoints[4]) / 2
    assert labels[int(round(mouth[1])), int(round(mouth[0]))] == SALIENCY_REGIONS.index("mouth")
    # The subject's right side is on the image's left in this frontal photo.
    right_x = np.nonzero(labels == SALIENCY_REGIONS.index("right_cheek"))[1].mean()
    left_x = np.nonzero(labels == SALIENCY_REGIONS.index("left_cheek"))[1].mean()
    assert right_x < left_x
    forehead_y = np.nonzero(labels == SALIENCY_REGIONS.index("forehead"))[0].mean()
    chin_y = np.nonzero(labels == SALIENCY_REGIONS.index("chin"))[0].mean()
    assert forehead_y < face.keypoints[0][1] < chin_y


def test_the_partition_covers_the_face_oval(astronaut, face):
    from lookalike.landmarks import region_mask

    labels = region_labels(astronaut.shape, face.landmarks)
    oval = region_mask(astronaut.shape, face.landmarks, ["face_oval"]) > 0.5
    covered = (labels >= 0)[oval].mean()
    assert covered > 0.97
    assert (labels >= 0).sum() < 1.05 * oval.sum()


def test_labels_follow_the_offset(astronaut, face):
    full = region_labels(astronaut.shape, face.landmarks)
    window = region_labels((200, 180), face.landmarks, offset=(150, 60))
    np.testing.assert_array_equal(window, full[60:260, 150:330])
