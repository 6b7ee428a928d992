"""An image shown with a question: its bytes, their type (read from the bytes, never from a
file name) and a content hash, by which a run stores each distinct image once."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

# the leading bytes of each type moot accepts (what vision APIs take on every provider)
MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
MEDIA_TYPES = frozenset(MAGIC.values())


def media_type(data: bytes) -> str | None:
    """The image's type by its first bytes; None for anything else."""
    return next((kind for magic, kind in MAGIC.items() if data.startswith(magic)), None)


@dataclass(frozen=True, slots=True)
class Image:
    name: str  # the file's own name (no folder): for people, never opened as a path
    media_type: str
    digest: str  # sha256 of the bytes, hex
    data: bytes = field(repr=False, compare=False)

    @classmethod
    def of(cls, name: str, data: bytes) -> Image:
        kind = media_type(data)
        if kind is None:
            raise ValueError(f"{name} is not a PNG, JPEG or GIF image")
        return cls(name, kind, hashlib.sha256(data).hexdigest(), data)

    @property
    def size(self) -> int:
        return len(self.data)

    def data_url(self) -> str:
        return data_url(self.media_type, self.data)

    def label(self) -> str:
        return label(self.name, self.size)


def data_url(media_type: str, data: bytes) -> str:
    """An image inline, as vision APIs and web pages take it."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def label(name: str, size: int) -> str:
    """What a text-only view shows in an image's place."""
    return f"[image: {name}, {human_size(size)}]"


def human_size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} kB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"
