"""The ``lookalike`` command: a thin layer over the Python API."""

from lookalike.cli.app import app, main

__all__ = ["app", "main"]
