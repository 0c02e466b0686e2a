"""Video: every face in every frame anonymized, one lookalike per person through the clip.

Frames go in (any iterable of RGB arrays: :func:`anonymize_frames`), anonymized frames come out, in the
same order and number. In between:

1. **Find.** The face detector runs on keyframes (every :attr:`VideoOptions.detect_every` frames, the
   first frame, every scene cut, and the frame after a track lost its face); between them each track is
   followed by its dense landmarks, looked for around its predicted place (FaceMesh, ~8 ms a face, where
   a detector pass costs hundreds). Detections are linked to tracks by box overlap and an identity
   embedding (MobileFace, the cheapest recognizer) so crossing faces keep their tracks and a face that
   comes back within :attr:`VideoOptions.reidentify_frames` gets its track (and its lookalike) back.
2. **Fail closed over time.** A track's face that neither the detector nor its landmarks find is still
   anonymized where it is predicted to be (a box grown with every missed frame: blurred, since its
   landmarks are not sure), for up to :attr:`VideoOptions.max_missed` frames. Frames are written
   :attr:`VideoOptions.detect_every` + a few frames late, so a face first detected late is followed
   backwards through the frames still held and anonymized there too. Before a frame is written, every
   known face in it is checked to lie under the changed pixels (else it is filled solid).
3. **Smooth.** Landmarks are smoothed over time with a zero-lag local line fit
   (:func:`~lookalike.tracking.smooth_landmarks`) so masks and lookalikes do not jitter.
4. **One person, one lookalike.** For ``lookalike``, ``swap`` and ``checked-swap`` a track's first sure
   face runs the method's whole loop; every later frame replays its outcome (same donor, regions, morph,
   style and blur: :func:`~lookalike.pipeline.lookalike.replay_lookalike`). The identity check runs again
   on keyframes of the track (every :attr:`VideoOptions.check_every` frames), whenever the head turns
   by more than :attr:`VideoOptions.check_turn` degrees since the last check, and when the face is seen
   again after being out of sight; a replay it finds
   recognizable switches the track to a whole-face blur (then a fill) for the rest of its life, unless
   another face overlapped it then (the check saw part of that face too): that frame is blurred and the
   check runs again on the next.

Every track gets a record (:meth:`VideoAnonymizer.records`): its frames, which were detected, tracked,
backfilled or predicted (and why), which fell back (and why), its lookalike and its checks.

>>> from lookalike.io.clips import scenario_frames
>>> frames = list(scenario_frames("pan", (320, 240), 6))
>>> anonymizer = VideoAnonymizer(method="blur")
>>> out = list(anonymizer.run(frames))
>>> len(out), len(anonymizer.records()), anonymizer.records()[0]["frames"]
(6, 1, '0-5')
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from lookalike.detection import detect_faces
from lookalike.landmarks.facemesh import default_landmarker
from lookalike.landmarks.pose import head_pose
from lookalike.pipeline.anonymize import AnonymizeConfig, anonymize, regenerate_face
from lookalike.pipeline.methods import get_method
from lookalike.synthesis import face_ellipse
from lookalike.tracking import (
    Observation,
    Track,
    associate,
    box_calibration,
    face_from_landmarks,
    is_scene_cut,
    smooth_landmarks,
    thumbnail,
)
from lookalike.types import Face

if TYPE_CHECKING:
    from lookalike.pipeline.lookalike import LookalikeOutcome


@dataclass(frozen=True)
class VideoOptions:
    """How a clip is followed; the defaults suit 24-60 fps footage.

    detect_every: frames between detector passes (the landmarks follow faces in between).
    max_missed: frames a track's face may go unseen (covered at its predicted place) before the track ends.
    backfill_margin: frames before a face's first sure sighting still covered at that place (a face coming
        in at the picture's edge is found only once mostly inside).
    reidentify_frames: how long after a track ended a face with its identity takes it up again.
    smooth_radius: frames on each side the landmark smoothing spans.
    still: a face whose smoothed landmarks move less than this share of its width (at most one pixel)
        since the last frame written keeps that frame's landmarks: a still face's mask and lookalike
        then stay put instead of following the landmark model's sub-pixel noise.
    check_every, check_turn: the lookalike's identity check runs on a track's frames this many frames
        apart, and when the head has turned (yaw, pitch or roll) this many degrees since the last check.
    check_marginal_every: how far apart the checks are while the last one passed near the edge of the
        level (a check costs about a second on 2 cores: on every frame a lookalike would play at one
        frame per second).
    cut_threshold: histogram change that marks a scene cut (see :func:`~lookalike.tracking.is_scene_cut`).
    rotations: the detector's search for turned faces in clips (None: the photo setting,
        :attr:`AnonymizeConfig.rotations`). "off" by default: footage is filmed upright, the upright search
        finds heads tilted up to about 150 degrees, and the upside-down pass would double the detector's
        cost on every keyframe.
    max_side: frames up to this long side are searched whole at native resolution (1280: one pass for
        720p footage); larger ones are tiled as photos are.
    """

    detect_every: int = 15
    max_missed: int = 12
    backfill_margin: int = 3
    reidentify_frames: int = 150
    smooth_radius: int = 3
    still: float = 0.01
    check_every: int = 24
    check_marginal_every: int = 6
    check_turn: float = 20.0
    cut_threshold: float = 0.25
    rotations: str | None = "off"
    max_side: int = 1280

    @property
    def delay(self) -> int:
        """Frames held back before writing: enough to follow a new face back to the last detector pass and
        to smooth with frames on both sides."""
        return self.detect_every + self.backfill_margin + self.smooth_radius


@dataclass
class _Held:
    index: int
    rgb: np.ndarray
    detected: bool = False


@dataclass
class _TrackState:
    """What the renderer keeps per track: the lookalike outcome it replays, the checks, what fell back."""

    recipe: dict | None = None
    override: tuple[str, float, str] | None = None  # (method, sigma, why) once a check failed
    last_check: int | None = None
    last_pose: tuple[float, float, float] | None = None
    checks: list[dict] = field(default_factory=list)
    fell_back: dict[int, str] = field(default_factory=dict)
    #: the landmarks the last frame was written with (frame, array), for the still-face dead band
    written: tuple[int, np.ndarray] | None = None
    #: whether this frame's landmarks are the last frame's (the face held still by the dead band)
    still: bool = False
    #: the last lookalike written and the input window it was made from, for a face that holds still
    held: tuple[LookalikeOutcome, np.ndarray] | None = None
    #: whether the last check passed near the edge of the level: then the checks come closer together
    marginal: bool = False
    started: float = 0.0


@dataclass
class VideoStats:
    """Counts over a run, for reports and the benchmark."""

    frames: int = 0
    detector_passes: int = 0
    scene_cuts: list[int] = field(default_factory=list)
    #: (frame, track) pairs where a keyframe's detector missed a face its track then covered
    detector_misses: int = 0
    #: faces written anonymized at a predicted place (no sure landmarks in that frame)
    predicted_faces: int = 0
    #: faces the final guard found not covered and filled (should stay 0)
    guarded: int = 0
    seconds: float = 0.0


class VideoAnonymizer:
    """Anonymize a stream of frames (see the module docstring). One instance per clip.

    ``config`` (or ``method`` and keyword overrides, as :func:`~lookalike.pipeline.anonymize` takes them)
    says how faces are anonymized, ``options`` how they are followed, ``fps`` the clip's frame rate (for
    the records only).
    """

    def __init__(
        self,
        config: AnonymizeConfig | None = None,
        options: VideoOptions | None = None,
        *,
        method: str | None = None,
        **overrides,
    ) -> None:
        config = config or AnonymizeConfig()
        if method is not None or overrides:
            config = AnonymizeConfig.model_validate(
                {**config.model_dump(), **overrides, **({"method": method} if method else {})}
            )
        self.config = config
        self.options = options or VideoOptions()
        self.stats = VideoStats()
        self.tracks: list[Track] = []
        self._active: list[Track] = []
        self._state: dict[int, _TrackState] = {}
        self._held: deque[_Held] = deque()
        self._thumb: np.ndarray | None = None
        self._last_detection = -(10**9)
        self._last_cut = 0
        self._next_id = 0
        self._rendered = -1
        self._crowded = False
        detector = (
            config.detector_config()
            if self.options.rotations is None
            else config.model_copy(update={"rotations": self.options.rotations}).detector_config()
        )
        self._detector = replace(detector, max_side=max(detector.max_side, self.options.max_side))
        self._local_detector = replace(detector, rotations=(0,), tiling=False)
        self._render_config = AnonymizeConfig.model_validate({**config.model_dump(), "verify": ()})

    # ------------------------------------------------------------------------------------------ API

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Anonymized frames, one per input frame, in order (each written ``options.delay`` frames late)."""
        started = time.perf_counter()
        for index, frame in enumerate(frames):
            rgb = _as_rgb(frame)
            self._analyse(index, rgb)
            while len(self._held) > self.options.delay:
                yield self._render(self._held.popleft())
        if self._held and not self._held[-1].detected:
            # the clip ends between detector passes: a face that came in since the last one is found now
            # and followed back through the frames still held
            last = self._held[-1]
            last.detected = True
            self._detect(
                last.index,
                last.rgb,
                {
                    t.id: t.predict(last.index) if last.index not in t.observations else t.observations[last.index].face
                    for t in self._active
                },
                final=True,
            )
        while self._held:
            yield self._render(self._held.popleft())
        self.stats.seconds = time.perf_counter() - started

    def records(self) -> list[dict]:
        """One JSON-ready record per track (see the module docstring)."""
        return [self._record(track) for track in self.tracks]

    # -------------------------------------------------------------------------------------- analysis

    def _analyse(self, index: int, rgb: np.ndarray) -> None:
        options = self.options
        self.stats.frames = index + 1
        thumb = thumbnail(rgb)
        cut = is_scene_cut(self._thumb, thumb, options.cut_threshold)
        self._thumb = thumb
        if cut:
            self.stats.scene_cuts.append(index)
            self._last_cut = index
            for track in self._active:
                track.ended = track.last
                track.notes.append(f"ended by a scene cut at frame {index}")
            self._active = []
        held = _Held(index, rgb)
        self._held.append(held)
        predictions = {track.id: track.predict(index) for track in self._active}
        keyframe = (
            cut
            or index - self._last_detection >= options.detect_every
            or self._crowded
            or any(t.misses for t in self._active)
        )
        if keyframe:
            held.detected = True
            self._detect(index, rgb, predictions)
        else:
            for track in self._active:
                self._follow(track, index, rgb, predictions[track.id], "landmarks lost between detector passes")
        self._crowded = self._separate(index, predictions)
        for track in list(self._active):
            if track.misses > options.max_missed or track.last < index:
                track.ended = track.last
                track.notes.append(f"lost after frame {track.last}")
                self._active.remove(track)

    def _detect(self, index: int, rgb: np.ndarray, predictions: dict[int, Face], final: bool = False) -> None:
        """A detector pass on frame ``index``. ``final``: the last frame, already followed (its tracks are
        only looked for new faces beside them)."""
        from lookalike.landmarks import add_landmarks

        self._last_detection = index
        self.stats.detector_passes += 1
        detections = add_landmarks(rgb, detect_faces(rgb, self._detector))
        tracks = list(self._active)
        hidden = [t for t in tracks if t.misses > 0]  # unseen in the frame before (taken before following this one)
        boxes = [predictions[t.id] for t in tracks]
        matched, lost, new = associate(boxes, detections)
        embeddings: list[np.ndarray | None] = [None] * len(detections)
        if not _unambiguous(boxes, detections, matched, lost, new):
            # identities only when geometry alone could be wrong: faces near each other, a face lost or new
            embeddings = [_embedding(rgb, d) for d in detections]
            matched, lost, new = associate(
                boxes,
                detections,
                track_embeddings=[t.embedding for t in tracks],
                detection_embeddings=embeddings,
                identity_threshold=_identity_threshold(),
            )
        for t, d in matched:
            if final and index in tracks[t].observations and tracks[t].observations[index].sure:
                continue  # already found by its landmarks
            self._detected(tracks[t], index, detections[d], embeddings[d])
        missed: set[int] = set()
        for t in [] if final else lost:
            self._follow(tracks[t], index, rgb, predictions[tracks[t].id], "the detector missed it")
            if index in tracks[t].observations:  # still in the picture: a face the detector missed, covered
                self.stats.detector_misses += 1
                missed.add(tracks[t].id)
        for d in new:
            track = self._reidentify(index, embeddings[d]) or self._emerging(
                index, detections[d], embeddings[d], hidden
            )
            if track is not None and track.id in missed:
                self.stats.detector_misses -= 1  # counted above as missed, but found: taken for a new face
            if track is None:
                track = Track(self._next_id)
                self._next_id += 1
                self.tracks.append(track)
                self._state[track.id] = _TrackState()
            if track not in self._active:  # (a hidden track found again is still active)
                self._active.append(track)
            self._detected(track, index, detections[d], embeddings[d])
            self._backfill(track, index)

    def _detected(self, track: Track, index: int, face: Face, embedding: np.ndarray | None) -> None:
        detected = [f for f, o in track.observations.items() if o.source == "detected"]
        if (
            embedding is not None
            and detected
            and track.first > self._rendered
            and min(detected) >= index - self.options.delay
        ):
            # a young track nothing of which is written yet (a face that came in at the edge, whose first
            # embedding was poor) may be a person seen before: then it is that person's track again
            older = self._reidentify(index, embedding, exclude=track)
            if older is not None:
                track = self._merge(older, track)
        track.add(Observation(index, face, "detected"))
        calibration = box_calibration(face)
        if calibration is not None:
            track.calibration = calibration
        if embedding is not None and (track.embedding is None or not self._crowded):
            # not while faces overlap: a detection there may hold some of the other face
            track.embedding = embedding if track.embedding is None else _unit(0.8 * track.embedding + 0.2 * embedding)

    def _separate(self, index: int, predictions: dict[int, Face]) -> bool:
        """Two tracks whose landmarks landed on the same face (one face passing in front of another): the
        one predicted nearer keeps it, the other is covered at its predicted place ("hidden behind another
        face"). Returns whether any two tracks' faces overlap, which makes the next frame a keyframe (the
        detector and the identities sort crossing faces out)."""
        from lookalike.tracking import iou

        crowded = False
        here = [t for t in self._active if index in t.observations]
        for i, a in enumerate(here):
            for b in here[i + 1 :]:
                oa, ob = a.observations[index], b.observations[index]
                overlap = iou(oa.face.box, ob.face.box)
                crowded = crowded or overlap > 0.1
                if overlap < 0.5 or not (oa.sure and ob.sure) or (oa.source == ob.source == "detected"):
                    continue
                if "detected" in (oa.source, ob.source):  # the detector gave that face to the other track
                    loser = b if oa.source == "detected" else a
                else:
                    gap_a = float(np.linalg.norm(predictions.get(a.id, oa.face).center - oa.face.center))
                    gap_b = float(np.linalg.norm(predictions.get(b.id, ob.face).center - ob.face.center))
                    loser = b if gap_a <= gap_b else a
                predicted = predictions.get(loser.id, loser.observations[index].face)
                loser.observations.pop(index)
                loser.misses += 1
                loser.add(
                    Observation(index, _grown(predicted, loser.misses), "predicted", "hidden behind another face")
                )
                loser.misses -= 1  # add() counted it already
        return crowded

    def _emerging(self, index: int, face: Face, embedding: np.ndarray | None, hidden: list[Track]) -> Track | None:
        """The track hidden behind another face that a new face coming out beside that face is, or None.

        A face coming out from behind another is only partly visible: its embedding is too poor for
        :meth:`_reidentify` (distances of two to three thresholds are usual), and by the time it is clear
        of the other face a second track (a second lookalike) would have been started for it. So a new
        face is taken as the hidden track's if it touches a face in front (boxes overlapping or within a
        quarter of a face width), lies within one and a half face widths of where the hidden track was last
        seen or is predicted, that hidden track is the only one there, and its identity (when known) is
        nearer to the hidden track than to every face in sight. ``hidden``: the tracks unseen in the frame
        before.
        """
        from lookalike.tracking import cosine_distance, iou

        in_front = [
            t.observations[index].face
            for t in self._active
            if t not in hidden and index in t.observations and t.observations[index].sure
        ]
        reach = max(face.width, face.height, 1.0)
        if not any(_gap(face, other) < 0.25 * max(reach, other.width) for other in in_front):
            return None
        candidates = []
        for track in hidden:
            if track not in self._active:
                continue
            now = track.observations.get(index)
            if now is not None and (
                now.source == "detected"
                or (now.sure and not any(iou(now.face.box, other.box) > 0.5 for other in in_front))
            ):
                continue  # found this frame on its own face (not on the face in front): not this new one
            sure = [f for f, o in track.observations.items() if o.sure and f < index]
            places = [track.predict(index).center] + ([track.observations[max(sure)].face.center] if sure else [])
            if min(float(np.linalg.norm(face.center - p)) for p in places) < 1.5 * reach:
                candidates.append(track)
        if len(candidates) != 1:
            return None
        found = candidates[0]
        if embedding is not None and found.embedding is not None:
            own = cosine_distance(found.embedding, embedding)
            others = [
                cosine_distance(t.embedding, embedding)
                for t in self._active
                if t is not found and t.embedding is not None and t not in hidden
            ]
            if others and own >= min(others):
                return None
        if not any(o.source == "detected" for f, o in found.observations.items() if index - 3 <= f < index):
            found.notes.append(f"came out from behind another face at frame {index}")
        found.misses = 0
        return found

    def _merge(self, older: Track, young: Track) -> Track:
        """Give ``young``'s observations to ``older`` (revived), which takes its place."""
        for frame, observation in young.observations.items():
            if frame not in older.observations or not older.observations[frame].sure:
                older.observations[frame] = observation
        older.embedding = young.embedding if older.embedding is None else older.embedding
        self.tracks.remove(young)
        self._state.pop(young.id, None)
        self._active = [t for t in self._active if t is not young and t is not older] + [older]
        return older

    def _reidentify(self, index: int, embedding: np.ndarray | None, exclude: Track | None = None) -> Track | None:
        """An ended track (same shot, ended recently) or one lost from sight (covered at its predicted place)
        this identity belongs to, revived; or None."""
        if embedding is None:
            return None
        from lookalike.tracking import cosine_distance

        threshold = _identity_threshold()
        best, best_distance = None, 0.5 * threshold
        distances = {
            t.id: cosine_distance(t.embedding, embedding)
            for t in self.tracks
            if t is not exclude and t.embedding is not None
        }
        for track in self.tracks:
            hidden = track in self._active and track.misses > 0  # still covered where it was last predicted
            if (
                track is exclude
                or track.embedding is None
                or not (
                    hidden
                    or (
                        track not in self._active
                        and track.ended is not None
                        and track.ended >= self._last_cut
                        and index - track.ended <= self.options.reidentify_frames
                    )
                )
            ):
                continue
            distance = distances[track.id]
            # clearly nearer than anyone else seen: small faces' embeddings crowd together
            runner_up = min((d for i, d in distances.items() if i != track.id), default=2.0)
            if distance < best_distance and distance < 0.6 * runner_up:
                best, best_distance = track, distance
        if best is not None:
            best.notes.append(
                f"{'found again' if best in self._active else 'came back'} at frame {index} "
                f"(identity distance {best_distance:.3f})"
            )
            best.ended = None
            best.misses = 0
        return best

    def _follow(
        self, track: Track, index: int, rgb: np.ndarray, predicted: Face, reason: str, source: str = "tracked"
    ) -> bool:
        """Look for the track's face around ``predicted``; record it found (``source``) or predicted."""
        height, width = rgb.shape[:2]
        x0, y0, x1, y1 = predicted.box
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            return False  # predicted out of the picture: nothing to cover, the track will end
        landmarks = default_landmarker().landmarks(rgb, predicted)
        if landmarks is None or not _plausible(landmarks, predicted):
            # moved further than the landmark model's crop forgives (fast motion, a face coming in at the
            # edge): the detector, on a window around the predicted place only (a few ms)
            found = self._local_detection(rgb, predicted)
            landmarks = None if found is None else default_landmarker().landmarks(rgb, found)
            if found is not None and landmarks is not None:
                predicted = found
        if landmarks is not None and _plausible(landmarks, predicted):
            face = face_from_landmarks(landmarks, track.calibration, predicted.score, like=predicted)
            face.pose = head_pose(landmarks)
            track.add(Observation(index, face, source))
            return True
        grown = _grown(predicted, track.misses + 1)
        track.add(Observation(index, grown, "predicted", reason))
        return False

    def _local_detection(self, rgb: np.ndarray, predicted: Face) -> Face | None:
        """The face nearest to ``predicted`` that the detector finds in a window three face sizes wide
        around it, or None."""
        height, width = rgb.shape[:2]
        reach = 1.5 * max(predicted.width, predicted.height, 16.0)
        cx, cy = (float(v) for v in predicted.center)
        x0, y0 = max(int(cx - reach), 0), max(int(cy - reach), 0)
        x1, y1 = min(int(cx + reach) + 1, width), min(int(cy + reach) + 1, height)
        if x1 - x0 < 32 or y1 - y0 < 32:
            return None
        faces = detect_faces(np.ascontiguousarray(rgb[y0:y1, x0:x1]), self._local_detector)
        faces = [f.translated(x0, y0) for f in faces]
        near = [
            f for f in faces if float(np.linalg.norm(f.center - predicted.center)) < 1.2 * max(predicted.width, 1.0)
        ]
        return min(near, key=lambda f: float(np.linalg.norm(f.center - predicted.center))) if near else None

    def _backfill(self, track: Track, index: int) -> None:
        """Follow a new track backwards through the frames still held (not across a scene cut)."""
        from lookalike.tracking import iou

        margin = 0
        for held in reversed(list(self._held)[:-1]):
            if held.index < self._last_cut or held.index in track.observations:
                break
            predicted = track.predict(held.index)
            found = self._follow(track, held.index, held.rgb, predicted, "before its first detection", "backfilled")
            if found and any(
                iou(track.observations[held.index].face.box, other.observations[held.index].face.box) > 0.5
                for other in self.tracks
                if other is not track and held.index in other.observations
            ):
                track.observations.pop(held.index)  # that face is another track's: this one is not followed there
                break
            if not found:
                margin += 1
                if margin >= self.options.backfill_margin:
                    break

    # ------------------------------------------------------------------------------------- rendering

    def _render(self, held: _Held) -> np.ndarray:
        index, rgb = held.index, held.rgb
        self._rendered = index
        present = [(t, t.observations[index]) for t in self.tracks if index in t.observations]
        faces = [(t, o, self._smoothed(t, o)) for t, o in present]
        if get_method(self.config.method).kind != "classic":
            out, masks = self._render_lookalike(index, rgb, faces)
        else:
            out, masks = self._render_classic(index, rgb, faces)
        for track, observation, face in faces:
            if not observation.sure:
                self.stats.predicted_faces += 1
            if not _covered(masks, face):
                self.stats.guarded += 1
                self._state[track.id].fell_back[index] = "solid (the face was not covered: fail closed)"
                out = anonymize(
                    out, config=self._render_config.model_copy(update={"method": "solid"}), faces=[face]
                ).image
        self._forget(index)
        return out

    def _smoothed(self, track: Track, observation: Observation) -> Face:
        """The observation's face as written: on landmarks smoothed over time, held still by the dead band."""
        state = self._state[track.id]
        face, written, state.still = self._smooth(track, observation, state.written)
        state.written = written
        return face

    def _smooth(
        self, track: Track, observation: Observation, written: tuple[int, np.ndarray] | None
    ) -> tuple[Face, tuple[int, np.ndarray] | None, bool]:
        """The observation's face on landmarks smoothed over time (a local line fit), and those landmarks;
        ``written``: the (frame, landmarks) the frame before was written with, which a face that moved
        less than the dead band keeps (then the last value is True)."""
        if not observation.sure:
            return observation.face, written, False
        points = {
            f: o.face.landmarks
            for f, o in track.observations.items()
            if o.sure and o.face.landmarks is not None and abs(f - observation.frame) <= self.options.smooth_radius
        }
        step = 0.08 * max(observation.face.width, 1.0)
        smoothed = smooth_landmarks(points, observation.frame, self.options.smooth_radius, max_step=step)
        still = False
        if written is not None and written[0] == observation.frame - 1:
            band = min(self.options.still * max(observation.face.width, 1.0), 1.0)
            if float(np.abs(smoothed[:, :2] - written[1][:, :2]).mean()) < band:
                smoothed, still = written[1], True
        face = face_from_landmarks(smoothed, track.calibration, observation.face.score, like=observation.face)
        face.pose = observation.face.pose
        return face, (observation.frame, smoothed), still

    def _render_classic(self, index: int, rgb: np.ndarray, faces) -> tuple[np.ndarray, np.ndarray]:
        if not faces:
            return rgb, np.zeros(rgb.shape[:2], np.float32)
        config = self._render_config
        solid = [f for t, _, f in faces if self._state[t.id].override]
        plain = [f for t, _, f in faces if not self._state[t.id].override]
        result = anonymize(rgb, config=config, faces=plain) if plain else None
        out = result.image if result else rgb
        mask = result.mask if result else np.zeros(rgb.shape[:2], np.float32)
        if solid:
            filled = anonymize(out, config=config.model_copy(update={"method": "solid"}), faces=solid)
            out, mask = filled.image, np.maximum(mask, filled.mask)
        if self.config.verify:
            self._verify_classic(index, rgb, faces, config)
        return out, mask

    def _verify_classic(self, index: int, rgb: np.ndarray, faces, config: AnonymizeConfig) -> None:
        """``--verify`` on a track's check frames: a face still matched is filled for the rest of the track."""
        for track, observation, face in faces:
            state = self._state[track.id]
            if not observation.sure or not self._due(state, index, face, track):
                continue
            result = anonymize(rgb, config=self.config, faces=[face])
            verification = result.faces[0].verification
            state.checks.append({"frame": index, "verification": verification})
            if result.faces[0].fallback and state.override is None:
                state.override = ("solid", 0.0, f"still matched at frame {index} after {self.config.method}")

    def _render_lookalike(self, index: int, rgb: np.ndarray, faces) -> tuple[np.ndarray, np.ndarray]:
        from lookalike.pipeline.lookalike import load_bank, load_crowd, replay_lookalike

        treated = rgb.copy()
        mask = np.zeros(rgb.shape[:2], np.float32)
        bank, crowd = load_bank(self.config.bank), load_crowd(self.config.crowd)
        for track, observation, face in faces:
            state = self._state[track.id]
            inside = _inside(face, rgb.shape)
            if observation.sure and inside and state.recipe is None:
                state.recipe = self._first_outcome(treated, rgb, face, track)
                state.last_check, state.last_pose = index, _pose(face)
                state.checks.append(
                    {
                        "frame": index,
                        "reached": state.recipe.get("reached"),
                        "first": True,
                        "recognizers": _brief(state.recipe.get("recognizers")),
                    }
                )
                state.marginal = _marginal(state.recipe)
                failing = self._fails_ahead(track, index, state.recipe)
                if failing is not None:
                    state.override = (
                        "blur",
                        0.4,
                        f"the lookalike failed its identity check at frame {failing}, {failing - index} "
                        f"frame{'s' if failing - index > 1 else ''} after its first: it passes only at the edge "
                        "of the level",
                    )
                    state.checks.append({"frame": failing, "reached": False, "ahead": True})
            if state.override is not None:
                method, sigma, why = state.override
                recipe = {"fallback": f"{method} (sigma {sigma:g} " if method == "blur" else method}
                outcome = replay_lookalike(
                    treated, _without_landmarks(face), recipe, original=rgb, mask_scale=self.config.mask_scale
                )
                state.fell_back[index] = f"{method}{f' (sigma {sigma:g} of the face width)' if sigma else ''}: {why}"
                state.held = None
            elif not observation.sure or state.recipe is None or not inside:
                outcome = replay_lookalike(
                    treated, _without_landmarks(face), {}, original=rgb, mask_scale=self.config.mask_scale
                )
                why = (
                    "no sure landmarks in this frame (" + (observation.reason or "no landmarks") + ")"
                    if not observation.sure
                    else "the face is partly outside the picture"
                )
                state.fell_back[index] = f"blur (sigma 0.4 of the face width): {why}"
                state.held = None
            else:
                check = self._due(state, index, face, track)
                held = None if check else self._held_still(state, treated)
                if held is not None:
                    outcome = held
                else:
                    outcome = replay_lookalike(
                        treated,
                        face,
                        state.recipe,
                        bank=bank,
                        crowd=crowd,
                        original=rgb,
                        mask_scale=self.config.mask_scale,
                        check=check,
                    )
                    x0, y0, x1, y1 = outcome.box
                    state.held = (outcome, treated[y0:y1, x0:x1].copy())
                if check:
                    state.last_check, state.last_pose = index, _pose(face)
                    state.marginal = _marginal(outcome.record.to_dict())
                    reached = outcome.record.reached
                    state.checks.append(
                        {"frame": index, "reached": reached, "recognizers": _brief(outcome.record.recognizers)}
                    )
                    if reached is False:
                        if any(
                            other is not track and seen_by.sure and _gap(face, seen) == 0
                            for other, seen_by, seen in faces
                        ):
                            # another face overlaps this one, so the check measured part of that face too (a
                            # face coming out from behind another): this frame is blurred, and the check runs
                            # again on the next one, until it passes or fails on the face alone
                            why = "the identity check failed while another face overlapped it (checked again)"
                            state.last_check = None
                        else:
                            why = f"the identity check failed at frame {index}"
                            state.override = ("blur", 0.4, why)
                        outcome = replay_lookalike(
                            treated, _without_landmarks(face), {}, original=rgb, mask_scale=self.config.mask_scale
                        )
                        state.held = None
                        state.fell_back[index] = f"blur (sigma 0.4 of the face width): {why}"
            x0, y0, x1, y1 = outcome.box
            treated[y0:y1, x0:x1] = outcome.image
            mask[y0:y1, x0:x1] = np.maximum(mask[y0:y1, x0:x1], outcome.mask)
        return treated, mask

    def _first_outcome(self, treated: np.ndarray, rgb: np.ndarray, face: Face, track: Track) -> dict:
        """The method's whole loop on the track's first sure face, as for a photo; its record is replayed."""
        outcome = regenerate_face(treated, face, self.config, seed=self.config.seed + track.id, original=rgb)
        return outcome.record.to_dict()

    def _fails_ahead(self, track: Track, index: int, recipe: dict) -> int | None:
        """The first of the track's next :data:`_LOOKAHEAD` frames still held (not yet written) where a
        replay of ``recipe`` fails the identity check, or None. A lookalike that passes only on the frame it
        was chosen on would show for a frame and turn into a blur; tried ahead, the track is blurred from
        its first frame instead."""
        from lookalike.pipeline.lookalike import load_bank, load_crowd, replay_lookalike

        fallback = str(recipe.get("fallback") or "")
        if not recipe.get("steer") or recipe.get("donor") is None or fallback.startswith(("blur (", "solid")):
            return None  # nothing to check (an unchecked swap) or a whole-face fallback
        written = self._state[track.id].written
        for held in self._held:
            observation = track.observations.get(held.index)
            if not index < held.index <= index + _LOOKAHEAD or observation is None or not observation.sure:
                written = None
                continue
            face, written, _ = self._smooth(track, observation, written)  # as it will be written
            if not _inside(face, held.rgb.shape):
                continue
            replayed = replay_lookalike(
                held.rgb,
                face,
                recipe,
                bank=load_bank(self.config.bank),
                crowd=load_crowd(self.config.crowd),
                original=held.rgb,
                mask_scale=self.config.mask_scale,
                check=True,
            )
            if replayed.record.reached is False:
                return held.index
        return None

    def _held_still(self, state: _TrackState, treated: np.ndarray) -> LookalikeOutcome | None:
        """The last lookalike written again, for a face held still (its landmarks the last frame's) whose
        window has not changed beyond the codec's noise since that lookalike was made (mean under
        :data:`_STILL_MEAN`, 99th percentile under :data:`_STILL_PEAK` levels, so a blink or a change
        of light makes a new one); else None. Made again from a frame that differs only by noise, the
        lookalike would change more than its original does (the synthesis amplifies the noise). The window
        compared is the one the lookalike was made on (``treated``: the frame with the faces before this
        one already drawn), so a neighbour drawn anew there (turned to a blur, moved) makes a new one."""
        if not state.still or state.held is None:
            return None
        outcome, source = state.held
        x0, y0, x1, y1 = outcome.box
        window = treated[y0:y1, x0:x1]
        if window.shape != source.shape:
            return None
        change = np.abs(window.astype(np.int16) - source).max(axis=-1)
        if float(change.mean()) >= _STILL_MEAN or float(np.percentile(change, 99)) >= _STILL_PEAK:
            return None
        return outcome

    def _due(self, state: _TrackState, index: int, face: Face, track: Track | None = None) -> bool:
        """Whether the identity check runs on this frame of the track: the first, every ``check_every``
        frames (every ``check_marginal_every`` while the last check passed near the edge of the level, see
        :func:`_marginal`), after a turn of the head, and on the first sure frame after the face was out of
        sight (hidden behind another face, lost, away): where tracks can have swapped people."""
        if state.last_check is None:
            return True
        if state.marginal and index - state.last_check >= self.options.check_marginal_every:
            return True
        if track is not None:
            previous = track.observations.get(index - 1)
            if previous is None or not previous.sure:
                return True
        if index - state.last_check >= self.options.check_every:
            return True
        pose, last = _pose(face), state.last_pose
        return bool(pose and last and max(abs(a - b) for a, b in zip(pose, last)) > self.options.check_turn)

    def _forget(self, index: int) -> None:
        """Drop the landmarks of observations no longer needed (long clips stay small in memory)."""
        old = index - self.options.smooth_radius - 1
        for track in self.tracks:
            observation = track.observations.get(old)
            if observation is not None and observation.face.landmarks is not None and observation.frame != track.last:
                # keep the pose and a 5-point face: enough for the record
                observation.face = Face(
                    observation.face.box,
                    observation.face.score,
                    observation.face.keypoints,
                    None,
                    observation.face.pose,
                    observation.face.rotation,
                )

    # --------------------------------------------------------------------------------------- records

    def _record(self, track: Track) -> dict:
        state = self._state[track.id]
        by_source: dict[str, list[int]] = {}
        reasons: dict[str, list[int]] = {}
        for frame, observation in sorted(track.observations.items()):
            by_source.setdefault(observation.source, []).append(frame)
            if observation.source == "predicted":
                reasons.setdefault(observation.reason or "unknown", []).append(frame)
        fell: dict[str, list[int]] = {}
        for frame, why in sorted(state.fell_back.items()):
            fell.setdefault(why, []).append(frame)
        frames = sorted(track.observations)
        record = {
            "track": track.id,
            "frames": _ranges(frames),
            "frame_count": len(frames),
            "detected": _ranges(by_source.get("detected", [])),
            "tracked": _ranges(by_source.get("tracked", [])),
            "backfilled": _ranges(by_source.get("backfilled", [])),
            "predicted": [{"frames": _ranges(f), "why": why} for why, f in reasons.items()],
            "fell_back": [{"frames": _ranges(f), "how_and_why": why} for why, f in fell.items()],
            "method": self.config.method,
            "notes": list(track.notes),
        }
        if state.recipe is not None:
            record["lookalike"] = {k: v for k, v in state.recipe.items() if k not in ("views",)}
        if state.checks:
            record["checks"] = state.checks
        return record


# ------------------------------------------------------------------------------------------- files


@dataclass
class ClipResult:
    """A clip anonymized into a temporary file: publish ``tmp`` (or remove it) to finish."""

    tmp: Path
    frames: int
    tracks: list[dict]
    truncated: str | None
    stats: VideoStats
    sha256: str = ""

    def summary(self) -> dict:
        return {
            "frames": self.frames,
            "tracks": len(self.tracks),
            "truncated": self.truncated,
            "detector_passes": self.stats.detector_passes,
            "scene_cuts": self.stats.scene_cuts,
            "detector_misses_covered": self.stats.detector_misses,
            "faces_at_predicted_places": self.stats.predicted_faces,
            "seconds": round(self.stats.seconds, 3),
        }


def anonymize_clip(
    source: str | Path,
    target: str | Path,
    config: AnonymizeConfig | None = None,
    options: VideoOptions | None = None,
    *,
    on_frame: Callable[[int, int | None], None] | None = None,
) -> ClipResult:
    """Anonymize the clip ``source`` into a temporary file beside ``target`` (same container; the sound
    remuxed unchanged). ``on_frame(done, total)`` after each frame written. A clip that cannot be opened
    raises :class:`~lookalike.errors.ImageError`; one that breaks part way is done up to the break and
    :attr:`ClipResult.truncated` says so. If no frame can be decoded at all, ImageError too."""
    from lookalike.errors import ImageError
    from lookalike.io.video import VideoReader, VideoWriter

    anonymizer = VideoAnonymizer(config, options)
    with VideoReader(source) as reader:
        writer = VideoWriter(reader.info, target, reader.container)
        reader.writer = writer
        stamps: deque = deque()

        def frames() -> Iterator[np.ndarray]:
            for frame in reader:
                stamps.append((frame.pts, frame.time_base))
                yield frame.rgb

        try:
            for done, out in enumerate(anonymizer.run(frames()), start=1):
                writer.write(out, *stamps.popleft())
                if on_frame:
                    on_frame(done, reader.info.frames)
            if writer.frames_written == 0:
                raise ImageError(source, f"no frame could be decoded ({reader.truncated or 'empty video stream'})")
            tmp = writer.finish()
        except BaseException:
            writer.abort()
            raise
    digest = hashlib.sha256()
    with open(tmp, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return ClipResult(
        tmp, writer.frames_written, anonymizer.records(), reader.truncated, anonymizer.stats, digest.hexdigest()
    )


def anonymize_frames(
    frames: Iterable[np.ndarray],
    method: str | None = None,
    config: AnonymizeConfig | None = None,
    options: VideoOptions | None = None,
    **overrides,
) -> Iterator[np.ndarray]:
    """Anonymized frames for frames (RGB uint8 arrays of one clip, in order): the Python API for callers
    who decode and encode themselves. For the per-track records, use :class:`VideoAnonymizer`."""
    return VideoAnonymizer(config, options, method=method, **overrides).run(frames)


# ------------------------------------------------------------------------------------------ helpers


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    from lookalike.io.images import image_from_array

    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8:
        return frame
    return image_from_array(frame).rgb


_MOBILEFACE = "mobileface"


def _identity_threshold() -> float:
    from lookalike.identity import get_recognizer

    return float(get_recognizer(_MOBILEFACE).threshold)


def _embedding(rgb: np.ndarray, face: Face) -> np.ndarray | None:
    """MobileFace embedding (the cheapest recognizer, ~15 ms) to tell tracks apart; None if unusable."""
    from lookalike.identity import get_recognizer

    if face.width < 24:
        return None
    try:
        return _unit(np.asarray(get_recognizer(_MOBILEFACE).embed(rgb, face), np.float64))
    except Exception:  # noqa: BLE001 - linking falls back to geometry alone
        return None


def _unambiguous(boxes: list[Face], detections: list[Face], matched, lost, new) -> bool:
    """Whether linking by overlap alone is safe: every track found, no new face, each match overlapping well
    and no detection overlapping two predictions."""
    from lookalike.tracking import iou

    if lost or new:
        return False
    for t, d in matched:
        if iou(boxes[t].box, detections[d].box) < 0.5:
            return False
        if sum(iou(b.box, detections[d].box) > 0.05 for b in boxes) > 1:
            return False
    return True


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _plausible(landmarks: np.ndarray, predicted: Face) -> bool:
    """Landmarks found around a predicted face are taken if they are about where and as large as expected."""
    lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
    centre = (lo + hi) / 2
    size = float(max(hi[0] - lo[0], 1.0))
    expected = max(predicted.width, 1.0)
    return float(np.linalg.norm(centre - predicted.center)) < 0.6 * expected and 0.4 < size / expected < 2.0


def _grown(face: Face, missed: int) -> Face:
    """A predicted face's box grown by 10% per frame unseen (up to 60%): the longer unseen, the less sure."""
    factor = 1.0 + min(0.1 * missed, 0.6)
    centre = face.center
    half = np.array([face.width, face.height], np.float32) * factor / 2
    return Face(
        np.concatenate([centre - half, centre + half]).astype(np.float32),
        face.score,
        face.keypoints,
        None,
        face.pose,
        face.rotation,
        ["predicted place"],
    )


#: Frames after a track's first that its lookalike is checked on before the first is written.
_LOOKAHEAD = 6

#: A still face's window may change by this much (mean, and 99th percentile of the largest channel
#: change, in levels) and keep the lookalike last written (:meth:`VideoAnonymizer._held_still`).
_STILL_MEAN, _STILL_PEAK = 1.5, 8.0

#: A check is marginal (:func:`_marginal`) when a recognizer's worst view is within this factor of the
#: threshold, or hides the face among fewer than this many times the level's k crowd faces.
_MARGIN_DISTANCE, _MARGIN_RANK = 1.1, 2.0


def _marginal(record: dict) -> bool:
    """Whether a passed check (a record's :meth:`~lookalike.pipeline.lookalike.LookalikeRecord.to_dict`)
    passed near the edge of its level: for some steering recognizer, under its worst view, the distance
    within :data:`_MARGIN_DISTANCE` times the threshold (scaled by the record's target distance), or a
    crowd rank under :data:`_MARGIN_RANK` times k. A lookalike that passes only
    just on one frame fails on some of the next ones (a 45-px face's dlib distance moves by 0.05 from
    frame to frame), so it is checked more often (:attr:`VideoOptions.check_marginal_every`) until a
    check fails (and the track is blurred) or passes clearly."""
    from lookalike.identity import get_recognizer

    if record.get("reached") is not True or not record.get("steer"):
        return False
    k = int(record.get("k") or 1)
    for name in record["steer"]:
        worst = (record.get("views") or {}).get(name) or (record.get("recognizers") or {}).get(name)
        if not worst:
            continue
        threshold = float(get_recognizer(name).threshold) * float(record.get("target_distance") or 1.0)
        ranks = [worst.get("rank"), worst.get("retrieval_rank")]
        nearest = worst.get("nearest_distance", worst.get("distance", np.inf))  # (the pass or fail is on it)
        if float(nearest) < _MARGIN_DISTANCE * threshold or any(r is not None and r < _MARGIN_RANK * k for r in ranks):
            return True
    return False


def _gap(a: Face, b: Face) -> float:
    """The distance between two faces' boxes (0 where they touch or overlap)."""
    dx = max(float(b.box[0] - a.box[2]), float(a.box[0] - b.box[2]), 0.0)
    dy = max(float(b.box[1] - a.box[3]), float(a.box[1] - b.box[3]), 0.0)
    return float(np.hypot(dx, dy))


def _inside(face: Face, shape: tuple[int, ...]) -> bool:
    """Whether the face's box lies in the picture (up to 5% of its width): a face cut by the edge is
    blurred rather than given a lookalike made (or checked) from half a face."""
    height, width = shape[:2]
    slack = 0.05 * face.width
    x0, y0, x1, y1 = (float(v) for v in face.box)
    if face.landmarks is not None:  # the mesh reaches past the edge where the face is cut (the box may not)
        (lx0, ly0), (lx1, ly1) = face.landmarks[:, :2].min(axis=0), face.landmarks[:, :2].max(axis=0)
        x0, y0, x1, y1 = min(x0, lx0), min(y0, ly0), max(x1, lx1), max(y1, ly1)
    return x0 >= -slack and y0 >= -slack and x1 <= width + slack and y1 <= height + slack


def _without_landmarks(face: Face) -> Face:
    return Face(face.box, face.score, face.keypoints, None, face.pose, face.rotation, list(face.notes))


def _pose(face: Face) -> tuple[float, float, float] | None:
    return None if face.pose is None else (face.pose.yaw, face.pose.pitch, face.pose.roll)


def _covered(mask: np.ndarray, face: Face) -> bool:
    """Whether most of the face's core (the box of its ellipse at half size, inside the picture) is changed
    (a lookalike that regenerates part of the face leaves some of it as it was)."""
    ellipse = face_ellipse(face, 0.5)
    x0, y0, x1, y1 = ellipse.bounds()
    height, width = mask.shape
    x0, y0 = max(int(x0), 0), max(int(y0), 0)
    x1, y1 = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
    if x1 <= x0 or y1 <= y0:
        return True  # outside the picture: nothing to cover
    return float((mask[y0:y1, x0:x1] > 0).mean()) > 0.5


def _brief(recognizers: dict | None) -> dict | None:
    if not recognizers:
        return None
    return {
        name: {k: v.get(k) for k in ("distance", "threshold", "match", "rank", "retrieval_rank") if k in v}
        for name, v in recognizers.items()
    }


def _ranges(frames: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    parts: list[str] = []
    start: int | None = None
    previous = -2
    for frame in frames:
        if start is None:
            start = previous = frame
        elif frame == previous + 1:
            previous = frame
        else:
            parts.append(f"{start}-{previous}" if previous != start else f"{start}")
            start = previous = frame
    if start is not None:
        parts.append(f"{start}-{previous}" if previous != start else f"{start}")
    return ",".join(parts)
