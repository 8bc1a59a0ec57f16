"""Regulatory frameworks: the shipped files, a team's own file, and resolving citations."""

from __future__ import annotations

from pathlib import Path

import pytest

from policylab.errors import InputError
from policylab.policy.frameworks import (
    builtin_frameworks,
    citations,
    load_framework,
    load_frameworks,
    parse_citation,
)
from policylab.policy.loader import load_policy

REPO = Path(__file__).resolve().parents[2]


def test_shipped_frameworks() -> None:
    found = builtin_frameworks()
    assert set(found) == {"eu_ai_act", "nist_ai_rmf"}
    eu = found["eu_ai_act"]
    # Article titles are the Regulation's own.
    assert eu.provision("art_14") is not None
    assert eu.provision("art_14").title == "Human oversight"  # type: ignore[union-attr]
    assert eu.provision("art_5").title == "Prohibited AI practices"  # type: ignore[union-attr]
    assert [p.id for p in eu.children("art_5")] == [f"art_5_1_{c}" for c in "abcdefgh"]
    nist = found["nist_ai_rmf"]
    functions = [p.id for p in nist.provisions if p.parent is None]
    assert functions == ["GOVERN", "MAP", "MEASURE", "MANAGE"]
    # NIST AI RMF 1.0 has 6 GOVERN, 5 MAP, 4 MEASURE and 4 MANAGE categories.
    assert [len(nist.children(f)) for f in functions] == [6, 5, 4, 4]
    assert all(p.summary for f in found.values() for p in f.provisions)


def test_citations_resolve_to_the_nearest_listed_provision() -> None:
    eu = builtin_frameworks()["eu_ai_act"]
    assert eu.resolve("art_14").id == "art_14"  # type: ignore[union-attr]
    assert eu.resolve("art_14_4_e").id == "art_14"  # type: ignore[union-attr]
    assert eu.resolve("art_5_1_a").id == "art_5_1_a"  # type: ignore[union-attr]
    assert eu.resolve("art_50").id == "art_50"  # type: ignore[union-attr]
    assert eu.resolve("art_5x") is None  # `x` does not mark a finer provision
    assert eu.resolve("art_99") is None
    nist = builtin_frameworks()["nist_ai_rmf"]
    assert nist.resolve("MEASURE-2.7").id == "MEASURE-2"  # type: ignore[union-attr]
    assert nist.ancestors("MEASURE-2") == ["MEASURE"]
    assert nist.depth("MEASURE-2") == 1


def test_parse_citation() -> None:
    assert parse_citation("eu_ai_act:art_14") == ("eu_ai_act", "art_14")
    assert parse_citation(" nist_ai_rmf:MAP-1.1 ") == ("nist_ai_rmf", "MAP-1.1")
    assert parse_citation("Computer Misuse Act 1990, s.1") is None
    assert parse_citation("Article 5: prohibited practices") is None


def test_a_teams_framework_file(tmp_path: Path) -> None:
    path = tmp_path / "charter.yaml"
    path.write_text(
        "id: acme_charter\ntitle: Acme Charter\nprovisions:\n"
        "  - {id: P1, title: People stay in control}\n"
        "  - {id: P1.2, parent: P1, title: Money, summary: No payment without consent.}\n",
        encoding="utf-8",
    )
    charter = load_framework(path)
    assert [p.id for p in charter.children("P1")] == ["P1.2"]
    loaded = load_frameworks([path])
    assert set(loaded) == {"eu_ai_act", "nist_ai_rmf", "acme_charter"}
    assert set(load_frameworks([path], builtin=False)) == {"acme_charter"}


def test_framework_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: Bad-Id\ntitle: T\nprovisions:\n  - {id: P1, titel: x}\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_framework(path)
    text = info.value.render()
    assert "bad.yaml:1:1 (id)" in text
    assert "unknown key `titel`" in text
    assert "did you mean `title`?" in text
    dangling = tmp_path / "dangling.yaml"
    dangling.write_text(
        "id: x\ntitle: T\nprovisions:\n  - {id: P2, parent: P1, title: t}\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match="names parent 'P1', which is not listed"):
        load_framework(dangling)


def test_citations_of_a_policy(example_pack: Path) -> None:
    policy = load_policy(REPO / "examples" / "agentic" / "policy.yaml").policy
    found = citations(policy)
    refs = [(c.owner_id, c.framework_id, c.provision_id) for c in found if c.is_reference]
    assert ("AGT.PAY.a", "eu_ai_act", "art_14") in refs
    free = [c.text for c in found if not c.is_reference]
    assert free == ["Fraud Act 2006, s.2"]
    # The Acme pack cites laws as free text only.
    acme = load_policy(example_pack).policy
    assert all(not c.is_reference for c in citations(acme))
