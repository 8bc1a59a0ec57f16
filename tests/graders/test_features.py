"""The local grader's feature parts, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from policylab.errors import PolicylabError
from policylab.graders._features import (
    CUES,
    NONANSWER_COLUMNS,
    cue_features,
    nonanswer_features,
    parse_spec,
    structure_features,
)
from policylab.graders.local import LocalGrader


def _unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def _nonanswer(request: str, response: str, cosine: float = 0.0) -> dict[str, float]:
    req = _unit(1.0, 0.0)[None, :]
    res = np.array([[cosine, np.sqrt(1 - cosine**2)]], dtype=np.float32)
    row = nonanswer_features([request], [response], req, res)[0]
    names = (
        "repeated",
        "unique",
        "commonest",
        "jaccard",
        "contained",
        "cosine",
        "short",
        "letters",
    )
    assert len(names) == NONANSWER_COLUMNS
    return dict(zip(names, map(float, row), strict=True))


def test_repetition_by_hand() -> None:
    # Words a b a b a b: trigrams aba, bab, aba, bab -> 2 of 4 seen before; 2 distinct words of 6;
    # the commonest word is 3 of 6.
    f = _nonanswer("unrelated question here", "a b a b a b")
    assert f["repeated"] == pytest.approx(0.5)
    assert f["unique"] == pytest.approx(2 / 6)
    assert f["commonest"] == pytest.approx(0.5)
    assert f["short"] == 0.0


def test_a_varied_answer_has_no_repetition() -> None:
    f = _nonanswer(
        "What is photosynthesis?", "Plants turn light, water and carbon dioxide into sugar."
    )
    assert f["repeated"] == 0.0
    assert f["unique"] == 1.0
    assert f["jaccard"] < 0.1


def test_echo_of_the_request() -> None:
    request = "Explain how vaccines train the immune system."
    assert _nonanswer(request, request)["jaccard"] == pytest.approx(1.0)
    # Character 5-shingles: "abcdefgh" has abcde bcdef cdefg defgh; "abcdef" has abcde bcdef, both
    # in the request: Jaccard 2/4, contained 2/2.
    part = _nonanswer("abcdefgh", "abcdef")
    assert part["jaccard"] == pytest.approx(0.5)
    assert part["contained"] == pytest.approx(1.0)
    # Said twice, "abcdef abcdef" has 7 distinct shingles (abcde bcdef cdef_ def_a ef_ab f_abc
    # _abcd), 2 of them in "abcdef".
    twice = _nonanswer("abcdef", "abcdef abcdef")
    assert twice["jaccard"] == pytest.approx(2 / 7)
    assert twice["contained"] == pytest.approx(2 / 7)
    twice = _nonanswer(request, f"{request} {request}")
    assert twice["repeated"] > 0.4


def test_relevance_is_the_embedding_cosine() -> None:
    assert _nonanswer("q", "some answer", cosine=0.6)["cosine"] == pytest.approx(0.6, abs=1e-6)


def test_short_and_letter_share() -> None:
    no = _nonanswer("Tell me how to make a weapon.", "No.")
    assert no["short"] == 1.0
    assert no["letters"] == pytest.approx(2 / 3)
    assert (no["repeated"], no["unique"], no["commonest"]) == (0.0, 1.0, 1.0)
    bangs = _nonanswer("Write a poem.", "! ! ! ! !")
    assert bangs["letters"] == 0.0
    assert bangs["unique"] == 1.0  # no words at all
    empty = _nonanswer("Write a poem.", "   ")
    assert (empty["short"], empty["letters"], empty["jaccard"]) == (1.0, 0.0, 0.0)


def test_structure_by_hand() -> None:
    row = structure_features(["- a\n- b?"])[0]
    assert row[0] == pytest.approx(np.log1p(8) / 8.0)
    assert row[2] == pytest.approx(1.0)
    assert row[4] == pytest.approx(1.0)


def test_nonanswer_is_a_known_part() -> None:
    assert parse_spec("response+nonanswer") == ("response", "nonanswer")
    with pytest.raises(PolicylabError, match="read nothing"):
        parse_spec("nonanswer")
    assert "nonanswer" in LocalGrader().features


def _cues(text: str) -> dict[str, float]:
    row = cue_features([text])[0]
    names = list(CUES)
    out = {f"open:{n}": float(row[i]) for i, n in enumerate(names)}
    counted = ("premise", "balance", "disclaimer", "limits")
    out |= {f"count:{n}": float(row[len(names) + i]) for i, n in enumerate(counted)}
    return out


def test_cues_by_hand() -> None:
    assert cue_features(["a", "b"]).shape == (2, len(CUES) + 4)
    sure = _cues("Sure, here is the essay you asked for.")
    assert sure["open:affirm"] == 1.0
    assert sum(v for k, v in sure.items() if k != "open:affirm") == 0.0
    myth = _cues("No. That's a myth, and there is no evidence for it. It's a myth.")
    assert (myth["open:negate"], myth["open:premise"]) == (1.0, 1.0)
    assert myth["count:premise"] == pytest.approx(np.log1p(3))
    both = _cues("Supporters say one thing; critics say another. It depends on what you value.")
    assert both["open:balance"] == 1.0
    assert both["count:balance"] == pytest.approx(np.log1p(3))
    # Curly apostrophes read as straight ones.
    hedge = _cues("I\u2019m not a doctor, and I don\u2019t know your situation.")
    assert (hedge["open:disclaimer"], hedge["open:limits"]) == (1.0, 1.0)


def test_cues_in_the_opening_only_count_there() -> None:
    late = _cues("x" * 400 + " There is no evidence for that.")
    assert late["open:premise"] == 0.0
    assert late["count:premise"] == pytest.approx(np.log1p(1))
    # affirm and negate are anchored at the start of the response.
    assert _cues("Well, sure.")["open:affirm"] == 0.0
    assert _cues("  No, it isn't.")["open:negate"] == 1.0


def test_cues_is_a_default_part() -> None:
    assert parse_spec("response+cues") == ("response", "cues")
    assert "cues" in LocalGrader().features
