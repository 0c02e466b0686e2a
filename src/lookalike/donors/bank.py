"""A bank of donor faces, ready to be warped onto a target: crops, landmarks, embeddings, provenance.

Each donor is kept as an aligned crop (RGB, ``size`` x ``size``, JPEG-encoded inside the file) in the
canonical frame (:func:`~lookalike.donors.canonical.canonical_transform`: a similarity on the stable landmarks, so
every donor's eyes, nose bridge and upper face oval sit at the same place), its 478 landmarks in crop pixels, both
recognizers' embeddings, the perceptual embedding, predicted attributes, head pose and mouth opening.
:attr:`DonorBank.pool` is the :class:`~lookalike.donors.pool.DonorPool` view that
:func:`~lookalike.donors.pool.select_donors` ranks; :meth:`DonorBank.donor_image` gives the pixels
and landmarks of a chosen donor. A donor is one face, or a k-anonymous prototype (an average of k faces,
:mod:`lookalike.donors.prototypes`) whose ``members`` name the faces it was made of, so a caller can
refuse a donor that contains the target itself (:meth:`DonorBank.containing`).

One ``.npz`` file holds a bank, with a format version and the fingerprint of the perception model that
embedded it. Loading reads the small arrays only; the JPEG data is read the first time a donor's image
is asked for. The shipped bank (every usable OMI face of 1-600 and its mirror image, at 512 px) is loaded once per
process by :func:`default_bank`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from lookalike.assets import load_asset
from lookalike.donors import prototypes as proto
from lookalike.donors.canonical import apply_similarity, canonical_transform, warp_similarity
from lookalike.donors.pool import RECOGNIZERS, DonorPool, model_fingerprint
from lookalike.donors.prototypes import GroupRules, average_faces, eyewear_score, gaze
from lookalike.errors import error_line
from lookalike.faces import NoFaceError, detect, main_face
from lookalike.identity import get_recognizer
from lookalike.io.archives import read_archive, write_archive
from lookalike.io.images import load_image
from lookalike.parallel import run_tasks
from lookalike.perception import load_model
from lookalike.perception.dataset import FeatureTable
from lookalike.perception.features import face_features
from lookalike.perception.model import PerceptionModel
from lookalike.types import Face

__all__ = ["DEFAULT_BANK", "BuildReport", "DonorBank", "default_bank"]

#: The bank shipped with the package (see ``models/LICENSE-donors-omi.txt``).
DEFAULT_BANK = Path(__file__).resolve().parent / "models" / "donors_omi.npz"

_FORMAT = 1
#: Appended to a face's name for its mirrored twin (``DonorBank.build(mirror=True)``).
MIRROR_SUFFIX = "~mirror"
#: Name of the canonical frame below; a bank records it, so crops of another frame are never mixed in.
_FRAME = "stable25-v1"


def _encode(rgb: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("could not encode a donor crop as JPEG")
    return data.tobytes()


def _decode(data: np.ndarray) -> np.ndarray:
    bgr = cv2.imdecode(np.asarray(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("a donor crop in the bank is not a readable JPEG (damaged file?)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------------------- the bank


#: Donors whose :meth:`DonorBank.donor_occluders` masks are kept (a 512-px crop's mask is 256 KB).
_OCCLUDERS_KEPT = 32


@dataclass
class BuildReport:
    """What :meth:`DonorBank.build` did with its inputs.

    ``failed``: name -> one-line error (unreadable image, internal error); ``no_face``: name -> reason
    (no face, or no dense landmarks); ``eyewear``: faces kept out of prototypes for their glasses;
    ``ungrouped``: faces no group could take; ``dropped``: prototype -> why it was dropped (its average
    was not detected with dense landmarks; a recognizer verifies it as one of its members alone; an error).
    """

    images: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    no_face: dict[str, str] = field(default_factory=dict)
    eyewear: list[str] = field(default_factory=list)
    groups: int = 0
    ungrouped: int = 0
    dropped: dict[str, str] = field(default_factory=dict)
    donors: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "images": self.images,
            "failed": len(self.failed),
            "no_face": len(self.no_face),
            "eyewear": len(self.eyewear),
            "groups": self.groups,
            "ungrouped": self.ungrouped,
            "dropped": len(self.dropped),
            "donors": self.donors,
            "seconds": round(self.seconds, 1),
        }


@dataclass
class DonorBank:
    """Donor faces in the canonical frame, with everything donor choice and transplant need.

    Attributes
    ----------
    names : donor names: the file name of a single face, ``proto-NNN`` for a prototype.
    members : for each donor the names of the faces it is made of (one for a single face).
    landmarks : (N, 478, 3) float32 landmarks in crop pixels (of the donor's own mesh: for a prototype,
        found again on the average).
    embeddings, attributes, attribute_names, pose, mouth, identity : as in
        :class:`~lookalike.donors.pool.DonorPool`.
    eyewear : (N,) :func:`~lookalike.donors.prototypes.eyewear_score` of each donor crop.
    meta : ``format``, ``frame``, ``size``, ``model`` (perception model fingerprint), ``prototypes_k``,
        provenance and license notes, the build summary.
    jpeg_offsets, jpeg : the crops' JPEG data, concatenated (uint8), donor i at ``jpeg[offsets[i]:offsets[i + 1]]``;
        ``jpeg`` is None until first needed when the bank was loaded from ``source``.
    mirror_of : (N,) for a mirrored donor, the row whose crop it is the left-right mirror of (its pixels
        are that crop flipped, not stored twice; its landmarks, embeddings and attributes were measured
        on the flipped crop); -1 for a donor with its own crop.
    source : the file the bank was loaded from, if any.
    """

    names: list[str]
    members: list[tuple[str, ...]]
    landmarks: np.ndarray
    embeddings: np.ndarray
    attributes: np.ndarray
    attribute_names: list[str]
    pose: np.ndarray
    mouth: np.ndarray
    identity: dict[str, np.ndarray]
    eyewear: np.ndarray
    meta: dict
    jpeg_offsets: np.ndarray = field(repr=False)
    jpeg: np.ndarray | None = field(default=None, repr=False)
    source: Path | None = None
    report: BuildReport | None = field(default=None, repr=False, compare=False)
    mirror_of: np.ndarray | None = field(default=None, repr=False)
    #: recognizer -> donor row -> embedding, for recognizers the bank holds no embeddings for (see
    #: :meth:`donor_embedding`); filled on demand, never saved
    _measured_later: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _occluders: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.names)
        self.mirror_of = (
            np.full(n, -1, np.int64) if self.mirror_of is None else np.asarray(self.mirror_of, np.int64).reshape(n)
        )
        if ((self.mirror_of >= 0) & (self.mirror_of[np.clip(self.mirror_of, 0, None)] >= 0)).any():
            raise ValueError("a mirrored donor must mirror a donor with its own crop")
        self.names = [str(name) for name in self.names]
        self.members = [tuple(str(m) for m in group) for group in self.members]
        self.landmarks = np.asarray(self.landmarks, np.float32).reshape(n, 478, 3)
        self.eyewear = np.asarray(self.eyewear, np.float32).reshape(n)
        self.jpeg_offsets = np.asarray(self.jpeg_offsets, np.int64).reshape(n + 1)
        if len(self.members) != n:
            raise ValueError(f"{n} donors but {len(self.members)} member lists")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def size(self) -> int:
        """Side of the square donor crops, pixels."""
        return int(self.meta["size"])

    @cached_property
    def pool(self) -> DonorPool:
        """The :class:`~lookalike.donors.pool.DonorPool` view (same rows, same names) for donor choice."""
        return DonorPool(
            self.names,
            self.embeddings,
            self.attributes,
            self.attribute_names,
            self.pose,
            self.mouth,
            self.identity,
            {"model": self.meta.get("model")},
        )

    def row(self, key: int | str) -> int:
        return self.pool.row(key)

    def donor_image(self, key: int | str) -> tuple[np.ndarray, np.ndarray]:
        """(size, size, 3) uint8 RGB crop of a donor and its (478, 3) landmarks in crop pixels."""
        i = self.row(key)
        assert self.mirror_of is not None  # __post_init__ fills it
        source = int(self.mirror_of[i]) if self.mirror_of[i] >= 0 else i
        start, stop = self.jpeg_offsets[source], self.jpeg_offsets[source + 1]
        crop = _decode(self._jpeg_data()[start:stop])
        if source != i:
            crop = np.ascontiguousarray(crop[:, ::-1])
        return crop, self.landmarks[i].copy()

    def donor_occluders(self, key: int | str) -> np.ndarray:
        """What covers a donor's skin in its crop (:func:`~lookalike.synthesis.regenerate.occluders`), found
        once per donor while it is among the last :data:`_OCCLUDERS_KEPT` asked for: a video replays one donor
        on every frame, the loop tries each donor in several styles, and the search costs ~0.15 s."""
        from lookalike.synthesis.regenerate import occluders

        i = self.row(key)
        mask = self._occluders.pop(i, None)
        if mask is None:
            mask = occluders(*self.donor_image(i))
        self._occluders[i] = mask  # (now the most recently asked for: dicts keep insertion order)
        while len(self._occluders) > _OCCLUDERS_KEPT:
            self._occluders.pop(next(iter(self._occluders), None), None)  # the least recently asked for
        return mask

    def donor_embedding(self, key: int | str, recognizer: str) -> np.ndarray:
        """A donor's identity embedding under ``recognizer``: the stored one, or for a recognizer the bank
        was built without, embedded from the donor's crop on first use (once per bank)."""
        i = self.row(key)
        if recognizer in self.identity:
            return np.asarray(self.identity[recognizer][i], np.float32)
        measured = self._measured_later.setdefault(recognizer, {})
        if i not in measured:
            crop, landmarks = self.donor_image(i)
            measured[i] = get_recognizer(recognizer).embed(crop, _landmark_face(landmarks))
        return measured[i]

    def _jpeg_data(self) -> np.ndarray:
        if self.jpeg is None:
            if self.source is None:
                raise ValueError("this bank has no image data")
            with np.load(self.source, allow_pickle=False) as data:
                self.jpeg = data["jpeg"]
        return self.jpeg

    def containing(self, names: str | Path | Iterable[str | Path]) -> list[str]:
        """Donors made (in part) of any of these faces, by file name: pass them to ``select_donors(exclude=...)``.

        Names are compared by their last path component, as members are recorded.
        """
        wanted = {Path(names).name} if isinstance(names, (str, Path)) else {Path(n).name for n in names}
        return [name for name, group in zip(self.names, self.members) if wanted & {Path(m).name for m in group}]

    # ------------------------------------------------------------------------------------- file

    def save(self, path: str | Path) -> Path:
        """Write the bank to one ``.npz`` file (atomically)."""
        jpeg = self._jpeg_data() if len(self) else np.zeros(0, np.uint8)
        flat = [m for group in self.members for m in group]
        member_offsets = np.cumsum([0] + [len(group) for group in self.members])
        assert self.mirror_of is not None  # __post_init__ fills it
        return write_archive(
            path,
            self.meta | {"format": _FORMAT},
            names=np.array(self.names, dtype=str),
            members=np.array(flat, dtype=str),
            member_offsets=member_offsets.astype(np.int64),
            landmarks=self.landmarks,
            embeddings=np.asarray(self.embeddings, np.float32),
            attributes=np.asarray(self.attributes, np.float32),
            attribute_names=np.array(self.attribute_names, dtype=str),
            pose=np.asarray(self.pose, np.float32),
            mouth=np.asarray(self.mouth, np.float32),
            eyewear=self.eyewear,
            recognizers=np.array(list(self.identity), dtype=str),
            jpeg=jpeg,
            jpeg_offsets=self.jpeg_offsets,
            mirror_of=self.mirror_of,
            **{f"identity_{k}": np.asarray(v, np.float32) for k, v in self.identity.items()},
        )

    @classmethod
    def load(cls, path: str | Path) -> "DonorBank":
        """Read a bank's arrays; the crops' JPEG data is read on the first :meth:`donor_image`."""
        path = Path(path)
        with read_archive(path, "donor bank", format=_FORMAT, frame=_FRAME) as (data, meta):
            flat = [str(m) for m in data["members"]]
            offsets = data["member_offsets"]
            members = [tuple(flat[offsets[i] : offsets[i + 1]]) for i in range(len(offsets) - 1)]
            return cls(
                [str(n) for n in data["names"]],
                members,
                data["landmarks"],
                data["embeddings"],
                data["attributes"],
                [str(a) for a in data["attribute_names"]],
                data["pose"],
                data["mouth"],
                {str(k): data[f"identity_{k}"] for k in data["recognizers"]},
                data["eyewear"],
                meta,
                data["jpeg_offsets"],
                None,
                path,
                mirror_of=data["mirror_of"] if "mirror_of" in data.files else None,
            )

    # ------------------------------------------------------------------------------------ build

    @classmethod
    def build(
        cls,
        paths: Sequence[str | Path],
        *,
        names: Sequence[str] | None = None,
        jobs: int = 1,
        prototypes_k: int | None = None,
        rules: GroupRules | None = None,
        exclude_eyewear: bool = True,
        one_member_check: bool = True,
        size: int = 256,
        quality: int = 90,
        model: PerceptionModel | None = None,
        mirror: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> "DonorBank":
        """A bank of the main face of each image, or of k-anonymous prototypes of them.

        Parameters
        ----------
        paths : image files; the largest face of each is used.
        names : how members are recorded (default: the file names).
        jobs : worker processes.
        prototypes_k : None for one donor per face; k >= 2 for prototypes of k faces each
            (:func:`~lookalike.donors.prototypes.group_faces` with ``rules``, default
            ``GroupRules(k=prototypes_k)``).
        exclude_eyewear : keep faces whose :func:`~lookalike.donors.prototypes.eyewear_score` passes
            :data:`~lookalike.donors.prototypes.EYEWEAR_THRESHOLD` out of prototypes (single-face banks
            keep them and record the score).
        one_member_check : drop a prototype that a recognizer verifies as exactly one of its members
            (distance <= threshold to that member only): to that recognizer the average *is* that person,
            which is what averaging was meant to prevent. An average verified as several members, or none,
            stays: it is then ambiguous between them, or nobody.
        size : side of the stored crops; prototypes are averaged at twice this and shrunk.
        quality : JPEG quality of the stored crops.
        model : perception model (default: the shipped one).
        mirror : single-face banks only: each face also becomes a second donor, its crop mirrored left to
            right (named ``NAME~mirror``), measured again on the flipped crop, so a head turned one way
            finds donors turned the same way. The pixels are not stored twice.
        progress : called with (phase, done, total), phase ``"faces"`` then ``"prototypes"``.

        The returned bank's ``report`` (:class:`BuildReport`) accounts for every input. Unreadable images
        and images without a usable face are skipped, never fatal.
        """
        started = time.perf_counter()
        model = model or load_model()
        files = [Path(p) for p in paths]
        names = [str(n) for n in names] if names is not None else [p.name for p in files]
        if len(names) != len(files):
            raise ValueError("give one name per path")
        if len(set(names)) != len(names):
            raise ValueError("donor names must be unique")
        single = prototypes_k is None
        if mirror and not single:
            raise ValueError("mirrored donors are for single-face banks (a prototype's mirror is no one new)")
        if prototypes_k is not None:  # checked before hours of work, not after
            if prototypes_k < 2:
                raise ValueError(f"prototypes need k >= 2 faces, got {prototypes_k}")
            rules = rules or proto.GroupRules(k=prototypes_k)
            if rules.k != prototypes_k:
                raise ValueError(f"prototypes_k={prototypes_k} but rules.k={rules.k}")
            if model.attribute_weights is None:
                raise ValueError("prototypes need a perception model with its attribute regressor (age, gender, skin)")
        report = BuildReport(images=len(files))
        tasks = [(_describe, (path, size if single else 0, quality, mirror)) for path in files]
        described = run_tasks(
            tasks,
            files,
            jobs=jobs,
            on_failure=lambda i, message: ("failed", message),
            progress=(lambda d, t: progress("faces", d, t)) if progress else None,
        )
        faces: list[tuple[int, dict]] = []
        for i, (status, value) in enumerate(described):
            if status == "failed":
                report.failed[names[i]] = value
            elif status == "no_face":
                report.no_face[names[i]] = value
            else:
                faces.append((i, value))

        donors: list[tuple[str, tuple[str, ...], dict]]
        if single:
            donors = [(names[i], (names[i],), d) for i, d in faces]
            donors += [
                (f"{names[i]}{MIRROR_SUFFIX}", (names[i],), {**d["mirror"], "mirror_of": row})
                for row, (i, d) in enumerate(faces)
                if d.get("mirror") is not None
            ]
        else:
            assert rules is not None  # set above for prototypes
            donors = _prototypes(
                faces,
                files,
                names,
                rules,
                exclude_eyewear,
                one_member_check,
                size,
                quality,
                model,
                jobs,
                report,
                progress,
            )
        bank = cls._assemble(donors, model, size, prototypes_k)
        report.donors = len(bank)
        report.seconds = time.perf_counter() - started
        bank.meta["build"] = report.to_dict()
        bank.report = report
        return bank

    @classmethod
    def _assemble(
        cls,
        donors: list[tuple[str, tuple[str, ...], dict]],
        model: PerceptionModel,
        size: int,
        prototypes_k: int | None,
    ) -> "DonorBank":
        jpegs = [np.frombuffer(d.get("jpeg", b""), np.uint8) for _, _, d in donors]
        offsets = np.cumsum([0] + [len(j) for j in jpegs])
        table = {
            key: np.stack([d["parts"][key] for _, _, d in donors]) if donors else np.zeros((0, 0), np.float32)
            for key in ("dlib", "facenet", "shape", "appearance", "pose", "mouth")
        }
        pool = DonorPool.from_features(FeatureTable([name for name, _, _ in donors], table), model)
        meta = {"frame": _FRAME, "size": int(size), "model": model_fingerprint(model), "prototypes_k": prototypes_k}
        return cls(
            pool.names,
            [members for _, members, _ in donors],
            np.stack([d["landmarks"] for _, _, d in donors]) if donors else np.zeros((0, 478, 3)),
            pool.embeddings,
            pool.attributes,
            pool.attribute_names,
            pool.pose,
            pool.mouth,
            {k: pool.identity[k] for k in RECOGNIZERS},
            np.array([d["eyewear"] for _, _, d in donors]),
            meta,
            offsets,
            np.concatenate(jpegs) if jpegs else np.zeros(0, np.uint8),
            mirror_of=np.array([d.get("mirror_of", -1) for _, _, d in donors], np.int64),
        )


def _prototypes(
    faces: list[tuple[int, dict]],
    paths: list[Path],
    names: list[str],
    rules: GroupRules,
    exclude_eyewear: bool,
    one_member_check: bool,
    size: int,
    quality: int,
    model: PerceptionModel,
    jobs: int,
    report: BuildReport,
    progress,
) -> list:
    """Group the described faces and average each group in workers; failures are counted in ``report``."""
    if not faces:
        return []
    parts = {key: np.stack([d["parts"][key] for _, d in faces]) for key in faces[0][1]["parts"]}
    embeddings = model.embed(parts)
    attributes = dict(zip(model.attribute_names, model.attributes(parts).T))
    traits = proto.FaceTraits(
        embeddings,
        attributes["age"],
        attributes["gender"],
        attributes["skin-color"],
        parts["pose"],
        parts["mouth"][:, 0],
        np.stack([d["gaze"] for _, d in faces]),
    )
    eyewear = np.array([d["eyewear"] for _, d in faces])
    # a face the check could not measure (NaN) is kept out too: unknown is not "no glasses"
    glasses = ~(eyewear <= proto.EYEWEAR_THRESHOLD) if exclude_eyewear else np.zeros(len(faces), bool)
    report.eyewear = [names[i] for (i, _), g in zip(faces, glasses) if g]
    groups = proto.group_faces(traits, rules, usable=~glasses)
    report.groups = len(groups)
    report.ungrouped = int((~glasses).sum()) - rules.k * len(groups)
    tasks, labels = [], []
    for number, group in enumerate(groups):
        members = [faces[j] for j in group]
        identity = {r: np.stack([d["parts"][r] for _, d in members]) for r in RECOGNIZERS} if one_member_check else {}
        tasks.append(
            (_average, ([paths[i] for i, _ in members], [d["landmarks"] for _, d in members], identity, size, quality))
        )
        labels.append((f"proto-{number:03d}", tuple(names[i] for i, _ in members)))
    averaged = run_tasks(
        tasks,
        [paths[faces[g[0]][0]] for g in groups],
        jobs=jobs,
        on_failure=lambda i, message: ("failed", message),
        progress=(lambda d, t: progress("prototypes", d, t)) if progress else None,
    )
    donors = []
    for (label, member_names), (status, value) in zip(labels, averaged):
        if status == "ok":
            donors.append((label, member_names, value))
        else:
            report.dropped[label] = value
    return donors


# ------------------------------------------------------------------------------ worker functions


def _landmark_face(landmarks: np.ndarray):
    """A donor crop's face as the detector would report it, from its dense landmarks: their box, and as
    the 5 keypoints the iris centres, nose tip and mouth corners."""
    points = np.asarray(landmarks, np.float32)[:, :2]
    box = np.concatenate([points.min(axis=0), points.max(axis=0)]).astype(np.float32)
    return Face(
        box=box, score=1.0, keypoints=points[[468, 473, 1, 61, 291]].copy(), landmarks=np.asarray(landmarks, np.float32)
    )


def _measured(image: np.ndarray, face) -> dict:
    """What the bank keeps of one face with dense landmarks in ``image``: feature parts, eyewear score,
    gaze and landmarks (in ``image`` pixels)."""
    return {
        "parts": face_features(image, face).parts,
        "eyewear": eyewear_score(image, face.landmarks),
        "gaze": gaze(face.landmarks),
        "landmarks": face.landmarks.astype(np.float32),
    }


def _central_face(image: np.ndarray):
    """The face with dense landmarks nearest the centre of a square crop, or None."""
    found = [f for f in detect(image) if f.landmarks is not None]
    centre = np.array([image.shape[1] / 2, image.shape[0] / 2])
    return min(found, key=lambda f: float(np.linalg.norm(f.center - centre))) if found else None


def _describe(path: Path, size: int, quality: int, mirror: bool = False) -> tuple[str, object]:
    """("ok", description) of the main face of one image, ("no_face", reason) or ("failed", message).

    ``size`` > 0 also cuts and encodes the donor crop (single-face banks); ``mirror`` then also describes
    the crop flipped left to right (``description["mirror"]``, None when its face is not found again).
    """
    try:
        image, face = main_face(path)
        if face.landmarks is None:
            return "no_face", f"{path}: no dense landmarks for the face (too small, or seen in profile)"
        out = _measured(image, face)
        if size:
            matrix = canonical_transform(face.landmarks, size)
            crop = warp_similarity(image, matrix, size)
            out["jpeg"] = _encode(crop, quality)
            out["landmarks"] = apply_similarity(matrix, face.landmarks)
            if mirror:
                # measured on the stored pixels flipped, exactly what donor_image will hand out
                flipped = np.ascontiguousarray(_decode(np.frombuffer(out["jpeg"], np.uint8))[:, ::-1])
                twin = _central_face(flipped)
                out["mirror"] = None if twin is None else _measured(flipped, twin)
        return "ok", out
    except NoFaceError as exc:
        return "no_face", str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad file must not end a batch
        return "failed", error_line(path, exc)


def _average(
    paths: list[Path], landmarks: list[np.ndarray], identity: dict[str, np.ndarray], size: int, quality: int
) -> tuple[str, object]:
    """("ok", donor) for the average of the main faces of ``paths``, or ("dropped", why).

    ``identity``: recognizer -> (k, d) embeddings of the members, for the one-member check (empty: none).
    """
    try:
        images = [load_image(p).rgb for p in paths]
        # Averaged at twice the stored size: the warp then samples the members near their own resolution,
        # and shrinking afterwards (area averaging) keeps the crop sharp.
        work = 2 * size
        average, _ = average_faces(images, landmarks, work)
        face = _central_face(average)
        if face is None:
            return (
                "dropped",
                f"not detected: the average of {', '.join(p.name for p in paths)} has no face with dense landmarks",
            )
        parts = face_features(average, face).parts
        for name, members in identity.items():
            recognizer = get_recognizer(name)
            verified = np.flatnonzero(np.asarray(recognizer.distance(members, parts[name])) <= recognizer.threshold)
            if len(verified) == 1:
                return "dropped", (
                    f"one member: {name} verifies the average of {', '.join(p.name for p in paths)} "
                    f"as {paths[verified[0]].name} alone"
                )
        small = cv2.resize(average, (size, size), interpolation=cv2.INTER_AREA)
        points = face.landmarks.astype(np.float32).copy()
        points[:, :2] = (points[:, :2] + 0.5) * (size / work) - 0.5
        points[:, 2] *= size / work
        return "ok", {
            "parts": parts,
            "eyewear": eyewear_score(average, face.landmarks),
            "landmarks": points,
            "jpeg": _encode(small, quality),
        }
    except Exception as exc:  # noqa: BLE001 - one bad donor must not end the bank build
        return "failed", error_line(paths[0], exc)


def default_bank() -> DonorBank:
    """The shipped bank (:data:`DEFAULT_BANK`), loaded once per process."""
    if not DEFAULT_BANK.is_file():
        raise FileNotFoundError(
            f"{DEFAULT_BANK}: the default donor bank is missing (build it with `lookalike donors build`)"
        )
    return load_asset(DonorBank.load, DEFAULT_BANK)
