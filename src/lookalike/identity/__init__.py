"""Face recognizers behind one interface (:class:`Recognizer`), created by name, once per process.

>>> from lookalike.identity import available_recognizers
>>> available_recognizers()
('dlib', 'facenet', 'mobileface')
"""

from __future__ import annotations

from functools import lru_cache

from lookalike.identity.base import Recognizer

_FACTORIES = {
    "dlib": ("lookalike.identity.dlib_resnet", "DlibRecognizer"),
    "facenet": ("lookalike.identity.facenet", "FaceNetRecognizer"),
    "mobileface": ("lookalike.identity.mobileface", "MobileFaceRecognizer"),
}


def available_recognizers() -> tuple[str, ...]:
    """Names accepted by :func:`get_recognizer`."""
    return tuple(_FACTORIES)


def resolve_steering(steer: str) -> tuple[str, ...]:
    """The recognizers a closed loop steers on, from how a user names them.

    ``"all"``: every recognizer the package ships (the default: an attacker may use any); ``"both"``: dlib
    and FaceNet (the two the project first shipped); otherwise names joined by ``+``, e.g.
    ``"dlib+facenet"`` (leave-one-out runs steer on all recognizers but one).

    >>> resolve_steering("both"), resolve_steering("facenet+dlib")
    (('dlib', 'facenet'), ('facenet', 'dlib'))
    >>> resolve_steering("all") == available_recognizers()
    True
    """
    if steer == "all":
        return available_recognizers()
    if steer == "both":
        return ("dlib", "facenet")
    names = tuple(dict.fromkeys(part.strip() for part in str(steer).split("+") if part.strip()))
    unknown = [name for name in names if name not in _FACTORIES]
    if not names or unknown:
        raise ValueError(
            f"steer: expected all, both, or recognizer names joined by '+' among {', '.join(_FACTORIES)}; got {steer!r}"
        )
    return names


@lru_cache(maxsize=None)
def get_recognizer(name: str) -> Recognizer:
    """The shared instance of a recognizer; its model loads on first use."""
    import importlib

    try:
        module_name, class_name = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown recognizer {name!r}; choose one of {', '.join(_FACTORIES)}") from None
    return getattr(importlib.import_module(module_name), class_name)()


__all__ = ["Recognizer", "available_recognizers", "get_recognizer", "resolve_steering"]
