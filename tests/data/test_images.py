"""Image parts: checked on import (type by magic bytes, size, decodable), inlined, thumbnailed."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

import pytest
from PIL import Image

from policylab.chat import ChatMessage, ImagePart
from policylab.data.images import (
    ImageError,
    check_images,
    check_item_images,
    sniff_type,
    thumbnail,
    to_data_url,
    validate_image,
)
from policylab.data.importer import Accepted, Rejected
from policylab.data.items import ItemRecord


def _image_bytes(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


def _file(tmp_path: Path, name: str, fmt: str, size: tuple[int, int] = (40, 30)) -> Path:
    path = tmp_path / name
    path.write_bytes(_image_bytes(fmt, size))
    return path


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_valid_images(tmp_path: Path, fmt: str, mime: str) -> None:
    path = _file(tmp_path, f"x.{fmt.lower()}", fmt)
    info = validate_image(str(path))
    assert (info.source, info.mime, info.width, info.height) == ("file", mime, 40, 30)
    assert info.size == path.stat().st_size
    assert sniff_type(path.read_bytes()) == mime
    url = to_data_url(str(path))
    assert url.startswith(f"data:{mime};base64,")
    again = validate_image(url)
    assert (again.source, again.mime, again.width) == ("data", mime, 40)


def test_type_comes_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    disguised = tmp_path / "photo.png"
    disguised.write_bytes(_image_bytes("JPEG"))
    assert validate_image(str(disguised)).mime == "image/jpeg"
    html = tmp_path / "page.png"
    html.write_text("<!DOCTYPE html><html></html>")
    with pytest.raises(ImageError, match=r"not a PNG, JPEG, GIF or WebP image .*3c 21 44 4f"):
        validate_image(str(html))


def test_a_data_url_must_say_what_it_holds() -> None:
    png = base64.b64encode(_image_bytes("PNG")).decode()
    with pytest.raises(ImageError, match="says image/jpeg, but its bytes are image/png"):
        validate_image(f"data:image/jpeg;base64,{png}")
    with pytest.raises(ImageError, match="only base64 data URLs"):
        validate_image("data:image/png,abc")
    with pytest.raises(ImageError, match="does not decode"):
        validate_image("data:image/png;base64,@@@")


def test_truncated_and_oversized_images(tmp_path: Path) -> None:
    whole = _image_bytes("PNG", (300, 300))
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageError, match="does not decode as image/png"):
        validate_image(str(cut))
    big = _file(tmp_path, "big.png", "PNG", (300, 300))
    with pytest.raises(ImageError, match="over the limit of 100"):
        validate_image(str(big), max_bytes=100)
    with pytest.raises(ImageError, match="300x300 pixels, over the limit of 1,000"):
        validate_image(str(big), max_pixels=1000)


def test_missing_and_remote_images(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no image file at"):
        validate_image("nope.png", base_dir=tmp_path)
    with pytest.raises(ImageError, match="policylab fetches nothing"):
        validate_image("https://example.com/a.png")
    assert validate_image("https://example.com/a.png", allow_remote=True).source == "remote"


def _item(url: str) -> ItemRecord:
    return ItemRecord(
        id="i1",
        messages=[
            ChatMessage.model_validate(
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this picture?"},
                        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
                    ],
                }
            )
        ],
    )


def test_item_paths_become_absolute(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    path = _file(tmp_path / "img", "a.png", "PNG")
    checked = check_item_images(_item("img/a.png"), base_dir=tmp_path)
    part = checked.messages[0].content[1]  # type: ignore[index]
    assert isinstance(part, ImagePart)
    assert part.image_url.url == str(path.resolve())
    assert part.image_url.detail == "low"
    with pytest.raises(ImageError, match=r"message 1, part 2 \(img/b.png\): no image file"):
        check_item_images(_item("img/b.png"), base_dir=tmp_path)


def test_import_results_reject_bad_images(tmp_path: Path) -> None:
    _file(tmp_path, "ok.png", "PNG")
    results = [
        Accepted(1, _item("ok.png"), {}),
        Accepted(2, _item("missing.png"), {"row": 2}),
        Rejected(3, "missing prompt", "empty", {}),
    ]
    out = list(check_images(results, base_dir=tmp_path))
    assert isinstance(out[0], Accepted)
    assert isinstance(out[1], Rejected)
    assert (out[1].row, out[1].kind) == (2, "invalid image")
    assert "no image file" in out[1].reason
    assert out[2] is results[2]


def test_thumbnail(tmp_path: Path) -> None:
    path = _file(tmp_path, "wide.jpg", "JPEG", (640, 320))
    thumb = thumbnail(str(path), max_px=100)
    assert thumb is not None
    assert thumb.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(thumb.split(",", 1)[1]))) as small:
        assert small.size == (100, 50)
    assert thumbnail(str(tmp_path / "missing.png")) is None
    assert thumbnail("https://example.com/a.png") is None


@pytest.mark.realdata
def test_harmbench_multimodal_behaviours_with_our_own_images(
    shared_data: Path, tmp_path: Path
) -> None:
    # HarmBench names its multimodal categories and image files but ships no images: we draw our
    # own under those names and check they import with their categories.
    source = shared_data / "harmbench" / "data" / "behavior_datasets"
    with (source / "harmbench_behaviors_multimodal_all.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 110
    by_category: dict[str, dict[str, str]] = {}
    for row in rows:
        by_category.setdefault(row["SemanticCategory"], row)
    assert set(by_category) == {
        "cybercrime_intrusion",
        "illegal",
        "harmful",
        "chemical_biological",
        "harassment_bullying",
        "misinformation_disinformation",
    }
    results = []
    for n, (category, row) in enumerate(sorted(by_category.items()), start=1):
        name = row["ImageFileName"]
        fmt = "PNG" if name.lower().endswith(".png") else "JPEG"
        image = Image.new("RGB", (64, 48), (n * 30, 80, 120))
        image.save(tmp_path / name, format=fmt)
        item = ItemRecord(
            id=row["BehaviorID"],
            messages=[
                ChatMessage.model_validate(
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": row["Behavior"]},
                            {"type": "image_url", "image_url": {"url": name}},
                        ],
                    }
                )
            ],
            categories=[category],
        )
        results.append(Accepted(n, item, {}))
    checked = list(check_images(results, base_dir=tmp_path))
    assert all(isinstance(r, Accepted) for r in checked)
    categories = sorted(r.item.categories[0] for r in checked if isinstance(r, Accepted))
    assert categories == sorted(by_category)


def test_truncated_images_fail_even_after_weasyprint_relaxes_pillow(tmp_path: Path) -> None:
    # WeasyPrint sets Pillow's LOAD_TRUNCATED_IMAGES globally on import; validation must not care.
    import weasyprint  # noqa: F401
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is True
    path = tmp_path / "cut.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue()[:-40])
    with pytest.raises(ImageError):
        validate_image(str(path))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True
