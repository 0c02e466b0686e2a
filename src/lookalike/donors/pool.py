"""Donor choice: the faces of a pool that look *somewhat* like a target face, and could stand in for it.

A face-replacement anonymizer needs a donor that is neither too similar (no anonymity) nor too different
(an unnatural result). :func:`select_donors` returns the candidates of a :class:`DonorPool` whose
perceptual similarity to the target lies in a requested band, that are compatible with it
(:class:`Compatibility`: perceived gender, age, skin tone, head pose, mouth state), and that neither
recognizer would verify as the target's own identity, ranked. A pool is embedded once
(:meth:`DonorPool.from_features`) and kept as one ``.npz`` file.

Perceived attributes are the perception model's predictions of OMI's human ratings (0..100 rating
units: ``gender`` 0 = female ... 100 = male as rated, ``skin-color`` higher = darker, ``age`` roughly
years for adults). They are how people would see a face, never facts about anyone.

>>> names = ["a", "b", "c", "d"]
>>> pool = DonorPool(names, np.array([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]], np.float32),
...                  np.array([[30, 20, 10], [32, 25, 12], [31, 22, 11], [60, 80, 12]], np.float32),
...                  ["age", "gender", "skin-color"], np.zeros((4, 3), np.float32), np.zeros(4, np.float32),
...                  {"dlib": 5 * np.eye(4, 128, dtype=np.float32), "facenet": np.eye(4, 512, dtype=np.float32)})
>>> donors = select_donors("a", pool, band=(0.75, 0.95), rule="band")
>>> [(d.name, round(d.similarity, 2)) for d in donors]  # "c" looks too different, "d" is a man of 60
[('b', 0.9)]
>>> explain(donors[0])  # doctest: +NORMALIZE_WHITESPACE
'b: similarity 0.90, group female/young (+0), age +2, gender +5, skin-color +2, pose 0°, mouth +0.00,
 dlib 7.07, facenet 1.00'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from lookalike.identity import get_recognizer
from lookalike.io.archives import read_archive, write_archive
from lookalike.perception.model import PerceptionModel

#: The recognizers whose verification decides "same person": a donor must pass both.
RECOGNIZERS = ("dlib", "facenet")

#: Default similarity band. Over the 20,706 pairs of OMI faces 601-804 under a head trained on faces 1-600,
#: similarity has median 0.72 (10th/90th percentile 0.42/0.91): 0.75 is "looks more alike than a random
#: pair". Above 0.90 a recognizer calls 15 % (0.90-0.95) to 28 % (above 0.95) of those different
#: synthetic people the same person, against 6 % at 0.85-0.90: too close to be an anonymous stand-in.
DEFAULT_BAND = (0.75, 0.90)

#: The perceived-ethnicity ratings of OMI that the attribute regressor predicts (0..100 each, how strongly
#: people saw the face as of that group; not exclusive).
ETHNICITIES = ("asian", "middle-eastern", "hispanic", "islander", "native", "black", "white")

#: Upper bounds of the age groups, in OMI age-rating units (predicted): child, young, middle, older.
#: On OMI a rating of ~9 is a child of ~8, 18 a teenager, 30 someone in their late twenties, 43 about
#: forty, 59 about sixty. 17 sits in the sparse gap between the children (ratings 0-12) and the adults
#: (20-67); 35 and 50 split the adults at the decades where their looks change most visibly.
AGE_BOUNDS = (17.0, 35.0, 50.0)
AGE_GROUPS = ("child", "young", "middle", "older")
#: How far apart, in age groups, the two perceived gender sides count for group distance: more than one
#: age group, so a same-gender neighbour in age comes before the other gender of the same age.
GENDER_STEP = 1.5

_FORMAT = 1


@dataclass(frozen=True)
class Compatibility:
    """When a donor may stand in for a target; ``None`` switches a check off.

    Defaults, from a head trained on OMI faces 1-600 and checked on faces 601-804:

    - ``gender_tolerance`` 10: predicted gender must be on the same side of 50 as the target's, except
      when both faces are within 10 of 50 (40..60), where people's ratings themselves are split. The
      held-out RMSE of predicted gender is 9.1; 94 % of faces land on the side people rated, and the
      misses are faces rated 40..65.
    - ``max_age_gap`` 12 rating units (about ten years for adults): 2.4 x the held-out RMSE of predicted
      age (5.0), so that a real gap of a few years is not lost to noise.
    - ``max_skin_gap`` 15 rating units: 2.2 x the held-out RMSE of predicted skin colour (6.8); ratings
      run 2..89, half of the faces between 14 and 31.
    - ``max_pose_gap`` 20 degrees on yaw and on pitch (roll is removed by alignment, so it is not
      compared); a face with unknown pose (NaN) is not constrained. OMI yaw spans -20..23 degrees
      (5th..95th percentile); 68 % of pairs pass 20 degrees, 51 % would pass 15.
    - ``max_ethnicity_gap`` 15 rating units on each perceived-ethnicity rating the pool has
      (:data:`ETHNICITIES`): a donor that people would see as of another ethnicity changes how the
      person is seen, however well it blends. Ratings run 0..100; a change above 25 is what the
      benchmark counts as an ethnicity moved.
    - ``keep_child`` children (predicted age below the first of :data:`AGE_BOUNDS`) get children, adults
      adults: a child's features on an adult head (or the reverse) is seen at once.
    - ``mouth_threshold`` 0.06 inter-ocular units: a mouth whose inner-lip gap exceeds it is open, and
      donor and target must agree. The gap is bimodal on OMI: 33 % of faces below 0.02 (lips
      touching), a broad mode of open smiles around 0.14, and the density minimum between them at
      0.059 (20-27 faces per 0.02 step there against 65 at the open mode).
    """

    gender_tolerance: float | None = 10.0
    max_age_gap: float | None = 12.0
    max_skin_gap: float | None = 15.0
    max_pose_gap: float | None = 20.0
    mouth_threshold: float | None = 0.06
    max_ethnicity_gap: float | None = 15.0
    keep_child: bool = True

    def attributes_needed(self) -> tuple[str, ...]:
        """Attributes a pool must have for these checks (perceived ethnicity is checked where present)."""
        checks = (
            ("gender", self.gender_tolerance),
            ("age", self.max_age_gap),
            ("skin-color", self.max_skin_gap),
            ("age", True if self.keep_child else None),
        )
        return tuple(dict.fromkeys(name for name, value in checks if value is not None))


@dataclass(frozen=True)
class Donor:
    """A candidate chosen by :func:`select_donors`, with how it compares with the target.

    ``gaps`` are candidate minus target: ``age``, ``gender`` and ``skin-color`` in rating units (those
    the model predicts), ``mouth`` in inter-ocular units. ``pose_gap`` is the larger of the yaw and pitch
    differences in degrees (NaN when unknown). ``identity`` is each recognizer's distance to the target
    (all above that recognizer's threshold, or the candidate would not be here).
    """

    name: str
    index: int
    similarity: float
    group: str
    group_distance: float
    gaps: dict[str, float]
    pose_gap: float
    identity: dict[str, float]


@dataclass
class DonorPool:
    """What donor choice needs to know of each candidate face, computed once.

    ``embeddings`` (N, k) perceptual unit vectors; ``attributes`` (N, A) predicted ratings of
    ``attribute_names`` (A may be 0 for a model without the attribute regressor); ``pose`` (N, 3) yaw,
    pitch, roll degrees (NaN if unknown); ``mouth`` (N,) inner-lip gap in inter-ocular units (NaN if
    unknown); ``identity`` recognizer name -> (N, d) raw embeddings. ``meta`` records the model that made
    the embeddings (``model``: a fingerprint), so a pool is never compared with another model's vectors.
    """

    names: list[str]
    embeddings: np.ndarray
    attributes: np.ndarray
    attribute_names: list[str]
    pose: np.ndarray
    mouth: np.ndarray
    identity: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        n = len(self.names)
        self.embeddings = _rows(self.embeddings, n)
        self.attributes = np.asarray(self.attributes, np.float32).reshape(n, len(self.attribute_names))
        self.attribute_names = [str(a) for a in self.attribute_names]
        self.pose = np.asarray(self.pose, np.float32).reshape(n, 3)
        self.mouth = np.asarray(self.mouth, np.float32).reshape(n)
        self.identity = {k: _rows(v, n) for k, v in self.identity.items()}
        self.meta = dict(self.meta or {})
        if len(set(self.names)) != n:
            raise ValueError("donor pool names must be unique")

    def __len__(self) -> int:
        return len(self.names)

    def row(self, key: int | np.integer | str) -> int:
        """The row of a face given by its name or index."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not -len(self) <= key < len(self):
                raise IndexError(f"pool index {key} out of range (pool of {len(self)})")
            return int(key) % len(self)
        try:
            return self.names.index(str(key))
        except ValueError:
            raise KeyError(f"{key!r} is not in the donor pool") from None

    @classmethod
    def from_features(cls, table, model: PerceptionModel) -> "DonorPool":
        """Embed a :class:`~lookalike.perception.dataset.FeatureTable` once with ``model``.

        Attributes are predicted when the model has its attribute regressor (left empty otherwise).
        Tables without the ``pose`` or ``mouth`` parts give NaN there: no constraint.
        """
        parts, n = table.parts, len(table.names)
        if n == 0:
            return cls(
                [],
                np.zeros((0, 0)),
                np.zeros((0, len(model.attribute_names))),
                list(model.attribute_names),
                np.zeros((0, 3)),
                np.zeros(0),
                {k: np.zeros((0, 0)) for k in RECOGNIZERS},
                {"model": model_fingerprint(model)},
            )
        has_attributes = model.attribute_weights is not None
        attributes = model.attributes(parts) if has_attributes else np.zeros((n, 0))
        return cls(
            list(table.names),
            model.embed(parts),
            attributes,
            list(model.attribute_names) if has_attributes else [],
            _part(parts, "pose", n, 3),
            _part(parts, "mouth", n, 1)[:, 0],
            {k: parts[k] for k in RECOGNIZERS},
            {"model": model_fingerprint(model)},
        )

    def save(self, path: str | Path) -> Path:
        return write_archive(
            path,
            self.meta | {"format": _FORMAT},
            names=np.array(self.names, dtype=str),
            embeddings=self.embeddings,
            attributes=self.attributes,
            attribute_names=np.array(self.attribute_names, dtype=str),
            pose=self.pose,
            mouth=self.mouth,
            recognizers=np.array(list(self.identity), dtype=str),
            **{f"identity_{k}": v for k, v in self.identity.items()},
        )

    @classmethod
    def load(cls, path: str | Path) -> "DonorPool":
        with read_archive(path, "donor pool", format=_FORMAT) as (data, meta):
            return cls(
                [str(n) for n in data["names"]],
                data["embeddings"],
                data["attributes"],
                [str(a) for a in data["attribute_names"]],
                data["pose"],
                data["mouth"],
                {str(k): data[f"identity_{k}"] for k in data["recognizers"]},
                meta,
            )

    @classmethod
    def load_or_build(cls, path: str | Path, table, model: PerceptionModel) -> "DonorPool":
        """The pool cached at ``path`` when it holds ``table``'s faces embedded by ``model``; else build and save it."""
        path = Path(path)
        if path.is_file():
            try:
                pool = cls.load(path)
            except (OSError, ValueError, KeyError):
                pool = None  # unreadable or an older format: rebuilt below
            if (
                pool is not None
                and pool.names == list(table.names)
                and pool.meta.get("model") == model_fingerprint(model)
            ):
                return pool
        pool = cls.from_features(table, model)
        pool.save(path)
        return pool


def _rows(array, n: int) -> np.ndarray:
    array = np.asarray(array, np.float32)
    return array.reshape(n, -1) if n else array.reshape(0, array.shape[-1] if array.ndim == 2 else 0)


def _part(parts: Mapping[str, np.ndarray], name: str, n: int, width: int) -> np.ndarray:
    if name not in parts or np.size(parts[name]) != n * width:
        return np.full((n, width), np.nan, np.float32)
    return np.asarray(parts[name], np.float32).reshape(n, width)


def model_fingerprint(model: PerceptionModel) -> str:
    """A short hash of a model's weights, stable across :meth:`PerceptionModel.save` and ``load``."""
    digest = hashlib.sha256()
    # float32 because that is what a saved model keeps: a loaded copy then hashes like the original
    arrays = [
        model.shape_basis,
        *model.weights,
        *(model.centers[k] for k in sorted(model.centers)),
        *(model.scales[k] for k in sorted(model.scales)),
    ]
    if model.attribute_weights is not None:
        arrays.append(model.attribute_weights)
    for array in arrays:
        digest.update(np.ascontiguousarray(np.asarray(array, np.float32)).tobytes())
    digest.update(json.dumps(list(model.attribute_names)).encode())
    return digest.hexdigest()[:16]


def age_group(age: np.ndarray | float) -> np.ndarray:
    """Index into :data:`AGE_GROUPS` of predicted age ratings.

    >>> age_group(np.array([5.0, 17.0, 34.9, 50.0, 70.0])).tolist()
    [0, 1, 1, 3, 3]
    """
    return np.searchsorted(np.asarray(AGE_BOUNDS), np.asarray(age, np.float64), side="right")


def group_label(age: float, gender: float) -> str:
    """``"female/young"`` and the like: the perceived gender side and the age group.

    >>> group_label(40.0, 80.0)
    'male/middle'
    """
    return f"{'male' if gender >= 50 else 'female'}/{AGE_GROUPS[int(age_group(age))]}"


def group_distance(age_a, gender_a, age_b, gender_b) -> np.ndarray:
    """Distance between age/gender groups: age groups apart, plus :data:`GENDER_STEP` across gender sides.

    >>> group_distance(30.0, 20.0, np.array([30.0, 45.0, 30.0, 60.0]), np.array([20.0, 20.0, 70.0, 70.0])).tolist()
    [0.0, 1.0, 1.5, 3.5]
    """
    steps = np.abs(age_group(age_a) - age_group(age_b)).astype(np.float64)
    return steps + GENDER_STEP * ((np.asarray(gender_a) >= 50) != (np.asarray(gender_b) >= 50))


@dataclass
class _Probe:
    """The target as the pool stores a face."""

    embedding: np.ndarray
    attributes: dict[str, float]
    pose: np.ndarray
    mouth: float
    identity: dict[str, np.ndarray]
    row: int | None = None


def _probe(target, pool: DonorPool, model: PerceptionModel | None) -> _Probe:
    if isinstance(target, (int, np.integer, str)):
        i = pool.row(target)
        return _Probe(
            pool.embeddings[i],
            dict(zip(pool.attribute_names, pool.attributes[i].tolist())),
            pool.pose[i],
            float(pool.mouth[i]),
            {k: v[i] for k, v in pool.identity.items()},
            i,
        )
    parts = getattr(target, "parts", target)
    if model is None:
        raise ValueError("a target given by its features needs the perception model that embedded the pool")
    fingerprint = pool.meta.get("model")
    if fingerprint is not None and fingerprint != model_fingerprint(model):
        raise ValueError("this donor pool was embedded with another perception model; build it again with this one")
    batch = {k: np.asarray(v)[None] for k, v in parts.items()}
    attributes = model.attributes(batch)[0] if model.attribute_weights is not None else np.zeros(0)
    pose = np.asarray(parts["pose"], np.float32).reshape(3) if "pose" in parts else np.full(3, np.nan, np.float32)
    mouth = float(np.asarray(parts["mouth"]).reshape(-1)[0]) if "mouth" in parts else float("nan")
    return _Probe(
        model.embed(batch)[0],
        dict(zip(model.attribute_names, np.asarray(attributes).tolist())),
        pose,
        mouth,
        {k: np.asarray(parts[k], np.float32) for k in RECOGNIZERS if k in parts},
    )


def select_donors(
    target: Mapping[str, np.ndarray] | int | str,
    pool: DonorPool,
    model: PerceptionModel | None = None,
    *,
    band: tuple[float, float] = DEFAULT_BAND,
    compatibility: Compatibility = Compatibility(),
    rule: Literal["perface", "band"] = "perface",
    limit: int | None = 10,
    exclude: Iterable[str] = (),
) -> list[Donor]:
    """Candidates of ``pool`` that could stand in for ``target``, best first; [] when none qualifies.

    ``target`` is one face: its feature parts (name -> (d,) arrays, as a row of a ``FeatureTable``, or a
    ``FaceFeatures``), embedded here with ``model`` (the model that embedded the pool); or the name or
    index of a face of the pool itself (``model`` is then not needed).

    Never returned: the target itself, names in ``exclude``, and any candidate that a recognizer of
    :data:`RECOGNIZERS` verifies as the target's identity (distance <= its threshold). The others must
    pass every check of ``compatibility`` and have a similarity ``lo <= s <= hi`` in ``band``. Then:

    - ``rule="band"``: ranked by ``|s - (lo + hi) / 2|``, nearest the band's centre first.
    - ``rule="perface"`` (PerFace's choice): each face's group is its predicted gender side (50 and above:
      male) and age group (:data:`AGE_BOUNDS`); group distance to the target is the number of age groups
      apart plus :data:`GENDER_STEP` if the gender sides differ (:func:`group_distance`). Ranked by group
      distance, then as in ``"band"``: the first donors are the band's candidates in the closest group
      that has any, nearest the centre first, followed by those of the next closest groups.

    Ties go to the name, so the order is deterministic. At most ``limit`` donors (``None``: all).
    """
    lo, hi = (float(b) for b in band)
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"band must be 0 <= lo <= hi <= 1, got {band!r}")
    if rule not in ("perface", "band"):
        raise ValueError(f"rule must be 'perface' or 'band', got {rule!r}")
    needed = set(compatibility.attributes_needed()) | ({"age", "gender"} if rule == "perface" else set())
    missing = sorted(needed - set(pool.attribute_names))
    if missing:
        raise ValueError(
            f"the donor pool has no predicted {', '.join(missing)} (a perception model with its attribute "
            "regressor makes them); switch those checks off in Compatibility or use rule='band'"
        )
    if len(pool) == 0 or (limit is not None and limit <= 0):
        return []
    probe = _probe(target, pool, model)
    if needed - probe.attributes.keys():
        raise ValueError("the model predicts no attributes for the target, but the pool has them: another model?")

    similarity = (1.0 + pool.embeddings.astype(np.float64) @ probe.embedding.astype(np.float64)) / 2.0
    keep = (similarity >= lo) & (similarity <= hi)
    if probe.row is not None:
        keep[probe.row] = False
    excluded = set(exclude)
    keep &= np.array([name not in excluded for name in pool.names])

    column = {name: pool.attributes[:, j].astype(np.float64) for j, name in enumerate(pool.attribute_names)}
    gaps: dict[str, np.ndarray] = {
        name: column[name] - probe.attributes[name] for name in ("age", "gender", "skin-color") if name in column
    }
    ethnic = [name for name in ETHNICITIES if name in column and name in probe.attributes]
    if ethnic:  # the largest change of any perceived-ethnicity rating
        gaps["ethnicity"] = np.max(np.abs(np.stack([column[n] - probe.attributes[n] for n in ethnic])), axis=0)
    c = compatibility
    if c.gender_tolerance is not None:
        gender, mine = column["gender"], probe.attributes["gender"]
        both_ambiguous = (np.abs(gender - 50.0) <= c.gender_tolerance) & (abs(mine - 50.0) <= c.gender_tolerance)
        keep &= ((gender >= 50.0) == (mine >= 50.0)) | both_ambiguous
    if c.max_age_gap is not None:
        keep &= np.abs(gaps["age"]) <= c.max_age_gap
    if c.max_skin_gap is not None:
        keep &= np.abs(gaps["skin-color"]) <= c.max_skin_gap
    if c.max_ethnicity_gap is not None and "ethnicity" in gaps:
        keep &= gaps["ethnicity"] <= c.max_ethnicity_gap
    if c.keep_child:
        keep &= (column["age"] < AGE_BOUNDS[0]) == (probe.attributes["age"] < AGE_BOUNDS[0])
    with np.errstate(invalid="ignore"):
        pose_gap = np.abs(pool.pose[:, :2].astype(np.float64) - probe.pose[:2]).max(axis=1)
        if c.max_pose_gap is not None:
            keep &= ~(pose_gap > c.max_pose_gap)  # NaN compares False: unknown pose passes
        mouth_gap = pool.mouth.astype(np.float64) - probe.mouth
        if c.mouth_threshold is not None and not np.isnan(probe.mouth):
            keep &= np.isnan(pool.mouth) | ((pool.mouth > c.mouth_threshold) == (probe.mouth > c.mouth_threshold))

    distances = _identity_distances(probe, pool, keep)
    for name, d in distances.items():
        keep &= ~(d <= _threshold(name))  # NaN (not compared) is not a verification

    if "age" in column and "gender" in column:
        groups = group_distance(probe.attributes["age"], probe.attributes["gender"], column["age"], column["gender"])
    else:
        groups = np.full(len(pool), np.nan)
    off_centre = np.abs(similarity - (lo + hi) / 2.0)
    rows = np.flatnonzero(keep)
    if rule == "perface":
        order = sorted(rows, key=lambda i: (groups[i], off_centre[i], pool.names[i]))
    else:
        order = sorted(rows, key=lambda i: (off_centre[i], pool.names[i]))
    donors = []
    for i in order[:limit]:
        group = group_label(column["age"][i], column["gender"][i]) if "age" in column and "gender" in column else ""
        donors.append(
            Donor(
                pool.names[i],
                int(i),
                float(similarity[i]),
                group,
                float(groups[i]),
                {**{k: float(v[i]) for k, v in gaps.items()}, "mouth": float(mouth_gap[i])},
                float(pose_gap[i]),
                {k: float(d[i]) for k, d in distances.items()},
            )
        )
    return donors


def _threshold(name: str) -> float:
    return float(get_recognizer(name).threshold)


def _identity_distances(probe: _Probe, pool: DonorPool, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Each recognizer's distance from the target to the candidates still in ``rows`` (NaN elsewhere)."""
    out = {}
    for name in RECOGNIZERS:
        if name not in pool.identity or name not in probe.identity:
            raise ValueError(f"no {name} embedding for the target or the pool: identity cannot be checked")
        d = np.full(len(pool), np.nan)
        if rows.any():
            d[rows] = get_recognizer(name).distance(pool.identity[name][rows], probe.identity[name])
        out[name] = d
    return out


def explain(donor: Donor) -> str:
    """One line on a donor, for the command line and reports."""
    signed = lambda value, digits=0: "n/a" if np.isnan(value) else f"{value:+.{digits}f}"  # noqa: E731
    parts = [f"{donor.name}: similarity {donor.similarity:.2f}"]
    if donor.group:
        parts.append(f"group {donor.group} ({donor.group_distance:+g})")
    parts += [
        f"{name} {signed(donor.gaps[name])}"
        for name in ("age", "gender", "skin-color", "ethnicity")
        if name in donor.gaps
    ]
    parts.append("pose n/a" if np.isnan(donor.pose_gap) else f"pose {donor.pose_gap:.0f}°")
    if "mouth" in donor.gaps:
        parts.append(f"mouth {signed(donor.gaps['mouth'], 2)}")
    parts += [f"{name} {distance:.2f}" for name, distance in donor.identity.items()]
    return ", ".join(parts)


__all__ = [
    "AGE_BOUNDS",
    "AGE_GROUPS",
    "DEFAULT_BAND",
    "ETHNICITIES",
    "GENDER_STEP",
    "RECOGNIZERS",
    "Compatibility",
    "Donor",
    "DonorPool",
    "age_group",
    "explain",
    "group_distance",
    "group_label",
    "model_fingerprint",
    "select_donors",
]
