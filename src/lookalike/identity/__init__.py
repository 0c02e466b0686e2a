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


@lru_cache(maxsize=None)
def get_recognizer(name: str) -> Recognizer:
    """The shared instance of a recognizer; its model loads on first use."""
    import importlib

    try:
        module_name, class_name = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown recognizer {name!r}; choose one of {', '.join(_FACTORIES)}") from None
    return getattr(importlib.import_module(module_name), class_name)()


__all__ = ["Recognizer", "available_recognizers", "get_recognizer"]
