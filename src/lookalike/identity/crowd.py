"""A reference crowd: identity embeddings of faces not under test, to judge anonymity by rank, not threshold.

"Distance to the original above the threshold" can still leave the original the nearest face in any
gallery (see the design notes: a light blur passes dlib's threshold for most synthetic faces yet
retrieves the original 98.5% of the time). A crowd of other people's faces gives a rank instead: an
anonymized face is hidden among k people when, for every recognizer,

- at least k crowd faces are nearer to the original than the anonymized face is (:meth:`ReferenceCrowd.rank`):
  the anonymized face has left the original's neighbourhood of k people; and
- at least k crowd faces are nearer to the anonymized face than the original is
  (:meth:`ReferenceCrowd.retrieval_rank`): an attacker who queries the crowd plus the original with the
  anonymized face finds k strangers before the original.

The first is the original's neighbourhood radius (cheap, and monotone in the distance to the original);
the second is the attacker's view. :meth:`ReferenceCrowd.protects` asks for one or both.

>>> crowd = ReferenceCrowd(["a", "b", "c"], {"dlib": np.array([[0.0, 0.1], [0.0, 0.3], [0.0, 0.5]], np.float32)})
>>> original, anonymized = np.array([0.0, 0.0]), np.array([0.0, 0.4])
>>> crowd.rank(anonymized, original, "dlib"), crowd.retrieval_rank(anonymized, original, "dlib")
(2, 3)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from lookalike.assets import load_asset
from lookalike.errors import error_line
from lookalike.faces import NoFaceError, main_face
from lookalike.identity import available_recognizers, get_recognizer
from lookalike.io.archives import read_archive, write_archive
from lookalike.parallel import run_tasks

#: The crowd shipped with the package (see ``models/LICENSE-crowd-omi.txt``).
DEFAULT_CROWD = Path(__file__).resolve().parent / "models" / "crowd_omi.npz"

_FORMAT = 1

#: A crowd face this close to the original (as a fraction of the recognizer's threshold) is taken to be
#: the original's own photo (the same image, or a re-encoded copy) and not counted: a face is not
#: anonymous among copies of itself. Distinct OMI faces are never this close (nearest ~0.53 for dlib).
SAME_FACE = 0.05


@dataclass
class ReferenceCrowd:
    """Identity embeddings of N reference faces for one or more recognizers.

    ``embeddings`` maps a recognizer name (:func:`lookalike.identity.available_recognizers`) to (N, d)
    float32 raw embeddings, measured with that recognizer's own ``distance``. ``meta`` records where the
    crowd came from.
    """

    names: list[str]
    embeddings: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    failed: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        n = len(self.names)
        self.embeddings = {k: np.asarray(v, np.float32).reshape(n, -1) for k, v in self.embeddings.items()}

    def __len__(self) -> int:
        return len(self.names)

    @property
    def recognizers(self) -> tuple[str, ...]:
        return tuple(self.embeddings)

    def distances(self, embedding: np.ndarray, recognizer: str) -> np.ndarray:
        """(N,) distance of every crowd face to ``embedding`` under ``recognizer``."""
        if recognizer not in self.embeddings:
            raise KeyError(f"this crowd has no {recognizer!r} embeddings (it has {', '.join(self.embeddings)})")
        if len(self) == 0:
            return np.zeros(0, np.float32)
        distance = get_recognizer(recognizer).distance
        return np.asarray(distance(self.embeddings[recognizer], np.asarray(embedding, np.float32)), np.float64).reshape(
            -1
        )

    def _others(self, original: np.ndarray, recognizer: str, exclude: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Distances to the original, and which crowd faces count (not excluded, not the original's copy)."""
        to_original = self.distances(original, recognizer)
        excluded = set(exclude)
        keep = to_original > SAME_FACE * get_recognizer(recognizer).threshold
        if excluded:
            keep &= np.array([name not in excluded for name in self.names], bool)
        return to_original, keep

    def rank(self, probe: np.ndarray, original: np.ndarray, recognizer: str, *, exclude: Iterable[str] = ()) -> int:
        """How many crowd faces are nearer to ``original`` than ``probe`` (the anonymized face) is.

        0: the anonymized face is still closer to the original than any crowd face. Crowd faces named in
        ``exclude``, and copies of the original itself (:data:`SAME_FACE`), are not counted.
        """
        to_original, keep = self._others(original, recognizer, exclude)
        gap = float(
            get_recognizer(recognizer).distance(np.asarray(probe, np.float32), np.asarray(original, np.float32))
        )
        return int(((to_original < gap) & keep).sum())

    def retrieval_rank(
        self, probe: np.ndarray, original: np.ndarray, recognizer: str, *, exclude: Iterable[str] = ()
    ) -> int:
        """How many crowd faces are nearer to ``probe`` than ``original`` is: the original's 0-based rank
        when the crowd plus the original is searched with the anonymized face (0: found first)."""
        _, keep = self._others(original, recognizer, exclude)
        gap = float(
            get_recognizer(recognizer).distance(np.asarray(probe, np.float32), np.asarray(original, np.float32))
        )
        return int(((self.distances(probe, recognizer) < gap) & keep).sum())

    def ranks(
        self, probe: Mapping[str, np.ndarray], original: Mapping[str, np.ndarray], *, exclude: Iterable[str] = ()
    ) -> dict[str, dict[str, int]]:
        """For every recognizer of the crowd that both faces have embeddings for:
        ``{"rank": ..., "retrieval_rank": ...}``."""
        exclude = tuple(exclude)
        return {
            name: {
                "rank": self.rank(probe[name], original[name], name, exclude=exclude),
                "retrieval_rank": self.retrieval_rank(probe[name], original[name], name, exclude=exclude),
            }
            for name in self.recognizers
            if name in probe and name in original
        }

    def protects(
        self,
        probe: Mapping[str, np.ndarray],
        original: Mapping[str, np.ndarray],
        k: int,
        *,
        criterion: Literal["both", "rank", "retrieval"] = "both",
        exclude: Iterable[str] = (),
    ) -> bool:
        """Whether the anonymized face is hidden among at least ``k`` crowd faces for every recognizer.

        ``criterion`` "rank" checks :meth:`rank`, "retrieval" :meth:`retrieval_rank`, "both" (default)
        both. A recognizer the probe or the original has no embedding for fails (closed: no evidence is no
        protection).
        """
        if criterion not in ("both", "rank", "retrieval"):
            raise ValueError(f"criterion must be 'both', 'rank' or 'retrieval', got {criterion!r}")
        if any(name not in probe or name not in original for name in self.recognizers):
            return False
        keys = {"both": ("rank", "retrieval_rank"), "rank": ("rank",), "retrieval": ("retrieval_rank",)}[criterion]
        return all(values[key] >= k for values in self.ranks(probe, original, exclude=exclude).values() for key in keys)

    # ------------------------------------------------------------------------------------- file

    def save(self, path: str | Path) -> Path:
        """Write the crowd as one ``.npz`` (float16 embeddings: ample for ranks, half the size)."""
        return write_archive(
            path,
            self.meta | {"format": _FORMAT},
            names=np.array(self.names, dtype=str),
            recognizers=np.array(list(self.embeddings), dtype=str),
            **{f"embeddings_{k}": v.astype(np.float16) for k, v in self.embeddings.items()},
        )

    @classmethod
    def load(cls, path: str | Path) -> "ReferenceCrowd":
        with read_archive(path, "crowd", format=_FORMAT) as (data, meta):
            return cls(
                [str(n) for n in data["names"]],
                {str(k): data[f"embeddings_{k}"].astype(np.float32) for k in data["recognizers"]},
                meta,
            )

    @classmethod
    def build(
        cls,
        paths: Sequence[str | Path],
        *,
        names: Sequence[str] | None = None,
        jobs: int = 1,
        recognizers: Sequence[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> "ReferenceCrowd":
        """Embed the largest face of each image with every recognizer (default: all available).

        Images without a face are left out and listed in ``skipped``, images that could not be read (or
        broke a worker) in ``failed`` (name -> one line each); neither stops the build.
        """
        files = [Path(p) for p in paths]
        names = [str(n) for n in names] if names is not None else [p.name for p in files]
        if len(names) != len(files):
            raise ValueError("give one name per path")
        recognizers = tuple(recognizers or available_recognizers())
        results = run_tasks(
            [(_embed_main_face, (path, recognizers)) for path in files],
            files,
            jobs=jobs,
            progress=progress,
            on_failure=lambda i, message: ("failed", message),
        )
        kept, rows = [], []
        skipped: dict[str, str] = {}
        failed: dict[str, str] = {}
        for name, (status, value) in zip(names, results):
            if status == "ok":
                kept.append(name)
                rows.append(value)
            else:
                (failed if status == "failed" else skipped)[name] = value
        embeddings = {
            r: np.stack([row[r] for row in rows]) if rows else np.zeros((0, 0), np.float32) for r in recognizers
        }
        return cls(
            kept, embeddings, {"embedded": len(kept), "failed": len(failed), "no_face": len(skipped)}, skipped, failed
        )


def _embed_main_face(path: Path, recognizers: tuple[str, ...]) -> tuple[str, object]:
    """("ok", {recognizer: embedding}) for the largest face of an image, ("no_face" | "failed", one line)."""
    try:
        image, face = main_face(path, landmarks=False)  # the recognizers align on the keypoints
        return "ok", {name: get_recognizer(name).embed(image, face).astype(np.float32) for name in recognizers}
    except NoFaceError as exc:
        return "no_face", str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad file must not end a batch
        return "failed", error_line(path, exc)


def default_crowd() -> ReferenceCrowd:
    """The shipped crowd (:data:`DEFAULT_CROWD`), loaded once per process."""
    if not DEFAULT_CROWD.is_file():
        raise FileNotFoundError(
            f"{DEFAULT_CROWD}: the default crowd is missing (build it with `lookalike crowd build`)"
        )
    return load_asset(ReferenceCrowd.load, DEFAULT_CROWD)
