"""Images in items: checked on import, inlined at request time, shrunk to thumbnails for pages.

An image part's `url` is a local file path (absolute, relative to the imported file, or `file://`),
a `data:` URL (base64), or an http(s) URL, which is refused unless allowed: policylab fetches
nothing, so it could not check it. A valid image:

- has a known type by its magic bytes (PNG, JPEG, GIF or WebP), the type a data URL declares;
- is at most `max_bytes` long (default 20 MB, OpenAI's limit per image) and `max_pixels` large;
- decodes completely with Pillow (a truncated or corrupt file fails here).

On import, relative paths become absolute, so an item's image is found whatever the working folder
when the run starts; `to_data_url` turns a path into a data URL when a request is sent.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image, ImageFile, UnidentifiedImageError

from policylab.chat import ChatMessage, ImagePart, ImageURL
from policylab.data.importer import Accepted, ImportResult, Rejected
from policylab.data.items import ItemRecord
from policylab.errors import PolicylabError

__all__ = [
    "IMAGE_TYPES",
    "MAX_BYTES",
    "MAX_PIXELS",
    "ImageError",
    "ImageInfo",
    "check_images",
    "check_item_images",
    "image_parts",
    "sniff_type",
    "thumbnail",
    "to_data_url",
    "validate_image",
]

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
IMAGE_TYPES: dict[str, str] = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}
"""The accepted MIME types and Pillow's name for each format."""
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}

Source = Literal["file", "data", "remote"]


class ImageError(PolicylabError):
    """An image part that cannot be used: missing, too large, of an unknown type, or corrupt."""


@dataclass(frozen=True)
class ImageInfo:
    """What validation found out about an image."""

    source: Source
    mime: str | None
    size: int | None
    width: int | None
    height: int | None
    path: Path | None = None


def sniff_type(data: bytes) -> str | None:
    """The MIME type the leading bytes announce, or None for anything but PNG/JPEG/GIF/WebP."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _path_of(url: str, base_dir: Path | None) -> Path:
    raw = url.removeprefix("file://")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path.resolve()


def _decode_data_url(url: str) -> tuple[bytes, str | None]:
    header, sep, payload = url.partition(",")
    if not sep:
        raise ImageError("a data URL needs a comma between its header and its data")
    params = header.removeprefix("data:").split(";")
    if "base64" not in params[1:]:
        raise ImageError("only base64 data URLs are accepted (`data:image/png;base64,...`)")
    declared = params[0].lower() or None
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError(f"the data URL's base64 does not decode: {exc}") from exc
    return data, _ALIASES.get(declared, declared) if declared else None


def _read(
    url: str, base_dir: Path | None, max_bytes: int
) -> tuple[bytes, Source, str | None, Path | None]:
    if url.startswith("data:"):
        data, declared = _decode_data_url(url)
        if len(data) > max_bytes:
            raise ImageError(f"the image is {len(data):,} bytes, over the limit of {max_bytes:,}")
        return data, "data", declared, None
    path = _path_of(url, base_dir)
    if not path.is_file():
        raise ImageError(
            f"no image file at {path}", hint="paths are relative to the imported file's folder"
        )
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageError(f"{path} is {size:,} bytes, over the limit of {max_bytes:,}")
    return path.read_bytes(), "file", None, path


def _load_strictly(image: Image.Image) -> None:
    """Decode every pixel, failing on truncated data.

    WeasyPrint sets Pillow's process-wide `ImageFile.LOAD_TRUNCATED_IMAGES = True` when imported,
    which would let a cut-off file pass as valid; the flag is turned off for this load only.
    """
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        image.load()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


def validate_image(
    url: str,
    *,
    base_dir: Path | None = None,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    allow_remote: bool = False,
) -> ImageInfo:
    """Check one image (see the module docstring); raises `ImageError` saying what is wrong."""
    if _is_remote(url):
        if not allow_remote:
            raise ImageError(
                f"{url} is a web address: policylab fetches nothing, so it cannot check it",
                hint="download the image and give its file path (or a data URL)",
            )
        return ImageInfo("remote", None, None, None, None)
    data, source, declared, path = _read(url, base_dir, max_bytes)
    mime = sniff_type(data)
    where = str(path) if path else "the data URL"
    if mime is None:
        head = data[:8].hex(" ")
        raise ImageError(
            f"{where} is not a PNG, JPEG, GIF or WebP image (it starts with bytes {head or 'none'})"
        )
    if declared is not None and declared != mime:
        raise ImageError(f"the data URL says {declared}, but its bytes are {mime}")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{where} is {width}x{height} pixels, over the limit of {max_pixels:,}"
                )
            if image.format != IMAGE_TYPES[mime]:
                raise ImageError(f"{where} decodes as {image.format}, not {IMAGE_TYPES[mime]}")
            _load_strictly(image)
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated and corrupt data as OSError or SyntaxError.
        raise ImageError(f"{where} does not decode as {mime}: {exc}") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{where} is too large to decode safely: {exc}") from exc
    return ImageInfo(source, mime, len(data), width, height, path)


def image_parts(messages: Iterable[ChatMessage]) -> Iterator[tuple[int, int, ImagePart]]:
    """Each image part with its message's and its own position (0-based)."""
    for i, m in enumerate(messages):
        if isinstance(m.content, list):
            for j, part in enumerate(m.content):
                if isinstance(part, ImagePart):
                    yield i, j, part


def check_item_images(
    item: ItemRecord,
    *,
    base_dir: Path | None = None,
    max_bytes: int = MAX_BYTES,
    allow_remote: bool = False,
) -> ItemRecord:
    """The item with every image checked and every file path made absolute.

    Raises `ImageError` naming the message and image that fail.
    """
    parts = list(image_parts(item.messages))
    if not parts:
        return item
    messages = list(item.messages)
    for i, j, part in parts:
        url = part.image_url.url
        try:
            info = validate_image(
                url, base_dir=base_dir, max_bytes=max_bytes, allow_remote=allow_remote
            )
        except ImageError as exc:
            raise ImageError(
                f"message {i + 1}, part {j + 1} ({_short(url)}): {exc.message}", hint=exc.hint
            ) from exc
        if info.path is not None and str(info.path) != url:
            content = list(messages[i].content or [])
            content[j] = ImagePart(
                image_url=ImageURL(url=str(info.path), detail=part.image_url.detail)
            )
            messages[i] = messages[i].model_copy(update={"content": content})
    return item.model_copy(update={"messages": messages})


def check_images(
    results: Iterable[ImportResult],
    *,
    base_dir: Path | None = None,
    max_bytes: int = MAX_BYTES,
    allow_remote: bool = False,
) -> Iterator[ImportResult]:
    """Import results with every accepted item's images checked; a bad image rejects its row."""
    for result in results:
        if not isinstance(result, Accepted):
            yield result
            continue
        try:
            item = check_item_images(
                result.item, base_dir=base_dir, max_bytes=max_bytes, allow_remote=allow_remote
            )
        except ImageError as exc:
            yield Rejected(result.row, "invalid image", exc.render(), result.raw)
            continue
        yield Accepted(result.row, item, result.raw) if item is not result.item else result


def to_data_url(url: str, *, max_bytes: int = MAX_BYTES) -> str:
    """A file path as a base64 data URL (http(s) and data URLs are returned as they are)."""
    if url.startswith("data:") or _is_remote(url):
        return url
    data, _, _, path = _read(url, None, max_bytes)
    mime = sniff_type(data)
    if mime is None:
        raise ImageError(f"{path} is not a PNG, JPEG, GIF or WebP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnail(url: str, *, max_px: int = 160) -> str | None:
    """A small PNG data URL of the image for pages and reports; None when it cannot be read."""
    if _is_remote(url):
        return None
    try:
        data, _, _, _ = _read(url, None, MAX_BYTES)
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((max_px, max_px))
            small = image.convert("RGBA") if image.mode not in ("RGB", "RGBA", "L") else image
            out = io.BytesIO()
            small.save(out, format="PNG", optimize=True)
    except (ImageError, UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    return f"data:image/png;base64,{base64.b64encode(out.getvalue()).decode('ascii')}"


def _short(url: str, limit: int = 60) -> str:
    if url.startswith("data:"):
        return url.split(",", 1)[0] + ",…"
    return url if len(url) <= limit else "…" + url[-(limit - 1) :]
