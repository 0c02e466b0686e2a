"""Image input and output: formats, orientation, metadata, atomic writes; the project's own data archives."""

from lookalike.io.archives import read_archive, write_archive
from lookalike.io.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    LoadedImage,
    compose_native,
    copy_image,
    image_from_array,
    is_image_path,
    load_image,
    native_to_rgb,
    save_image,
    write_bytes_atomic,
    write_text_atomic,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "read_archive",
    "write_archive",
    "IMAGE_SUFFIXES",
    "LoadedImage",
    "compose_native",
    "copy_image",
    "image_from_array",
    "is_image_path",
    "load_image",
    "native_to_rgb",
    "save_image",
    "write_bytes_atomic",
    "write_text_atomic",
]
