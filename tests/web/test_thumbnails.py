"""Image parts show as small inline thumbnails on the labelling and adjudication pages."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from policylab.web.pages import _env


def test_conversation_shows_a_thumbnail(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (10, 200, 10)).save(out, format="JPEG")
    path.write_bytes(out.getvalue())
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this photo?"},
                {"type": "image_url", "image_url": {"url": str(path)}},
                {"type": "image_url", "image_url": {"url": str(tmp_path / "gone.png")}},
            ],
        }
    ]
    html = _env.get_template("_conversation.html.j2").render(messages=messages, response="A field.")
    assert html.count('<img class="thumb" src="data:image/png;base64,') == 1
    assert "[image: not available]" in html
    assert str(path) not in html  # the page never points at the file itself
