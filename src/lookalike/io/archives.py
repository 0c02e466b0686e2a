"""The project's own data files (crowd, donor pool, donor bank): one compressed ``.npz`` each, with a JSON
``meta`` entry whose ``format`` (and any other key a reader insists on) says whether this code can read it.

>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "x.npz"
>>> _ = write_archive(path, {"format": 1, "note": "demo"}, values=np.arange(3))
>>> with read_archive(path, "demo file", format=1) as (data, meta):
...     data["values"].tolist(), meta["note"]
([0, 1, 2], 'demo')
"""

from __future__ import annotations

import io
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from lookalike.io.images import write_bytes_atomic


def write_archive(path: str | Path, meta: dict, **arrays: np.ndarray) -> Path:
    """Write ``arrays`` and ``meta`` (as JSON) to one compressed ``.npz`` file, atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=json.dumps(meta), **arrays)
    return write_bytes_atomic(path, buffer.getvalue())


@contextmanager
def read_archive(path: str | Path, what: str, **expected) -> Iterator[tuple[np.lib.npyio.NpzFile, dict]]:
    """The open archive (arrays read on access) and its ``meta``; ``ValueError`` naming the file when a
    ``meta`` key differs from ``expected`` (an older or foreign file: build it again)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if any(meta.get(key) != value for key, value in expected.items()):
            found = " / ".join(f"{key} {meta.get(key)!r}" for key in expected)
            wanted = " / ".join(str(value) for value in expected.values())
            raise ValueError(f"{path}: {what} {found}, expected {wanted}; build it again")
        yield data, meta
