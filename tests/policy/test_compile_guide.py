from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from policylab.errors import PolicylabError
from policylab.policy.compile.guide import anchor, compile_guide
from policylab.policy.loader import load_policy
from policylab.policy.schema import Policy

FIXTURES = Path(__file__).parent / "fixtures"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _Checker(HTMLParser):
    """Collects ids, links and tags, and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.tags: set[str] = set()
        self.asset_attrs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name == "id" and value:
                self.ids.append(value)
            if name == "href" and value is not None:
                self.hrefs.append(value)
            if name in ("src", "srcset", "data", "poster"):
                self.asset_attrs.append(f"{tag}[{name}]={value}")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    return checker


@pytest.fixture(scope="module")
def mini() -> Policy:
    return load_policy(FIXTURES / "mini" / "policy.yaml").policy


def test_html_guide_is_well_formed_and_self_contained(mini: Policy) -> None:
    page = compile_guide(mini, fmt="html")
    assert page.startswith("<!DOCTYPE html>")
    html = check_html(page)
    assert html.asset_attrs == []
    assert not {"script", "link", "img", "iframe", "object"} & html.tags
    assert "<style>" in page
    assert "@import" not in page
    assert "url(" not in page
    # Every in-page link has a target, ids are unique, and no link leaves the page.
    assert len(html.ids) == len(set(html.ids))
    assert all(h.startswith("#") for h in html.hrefs)
    missing = {h[1:] for h in html.hrefs} - set(html.ids)
    assert missing == set()


def test_html_guide_anchors_every_section(mini: Policy) -> None:
    ids = set(check_html(compile_guide(mini, fmt="html")).ids)
    assert {f"cat-{c.id}" for c in mini.categories} <= ids
    assert {f"rule-{r.id}" for r in mini.rules} <= ids
    assert {f"ex-{e.id}" for e in mini.examples} <= ids
    assert {"def-working-exploit", "def-label-dose", "amb-fiction"} <= ids
    assert {"what-to-label", "definitions", "taxonomy", "precedence", "ambiguity"} <= ids
    assert anchor("rule", "CYB.2.a") == "rule-CYB.2.a"
    assert anchor("def", "Safe completion (partial)") == "def-safe-completion-partial"


def test_html_guide_content(mini: Policy) -> None:
    page = compile_guide(mini, fmt="html")
    text = " ".join("".join(check_html(page).text).split())
    # What to label.
    for value in ("comply", "partial", "refuse", "Violation", "Category", "Rule ids"):
        assert value in text
    # Markdown fields are rendered; the expected behaviour and rules of each category are shown.
    assert "<strong>computer security</strong>" in page
    cyb2 = page.split('id="cat-CYB.2"', 1)[1].split("</section>", 1)[0]
    assert '<span class="behavior b-refuse">refuse</span>' in cyb2
    assert 'id="rule-CYB.2.a"' in cyb2
    assert "The user claims to be a penetration tester at a named company." in cyb2
    # Examples on both sides, each linking its rules.
    assert cyb2.index("Violating side") < cyb2.index('id="ex-cyb2-viol"')
    assert cyb2.index("Allowed side") < cyb2.index('id="ex-cyb2-allow"')
    assert '<a href="#rule-CYB.2.a">CYB.2.a</a>' in cyb2
    # Precedence and ambiguity.
    assert '<a href="#cat-CYB">CYB</a> over <a href="#cat-MED">MED</a>' in page
    assert "Judge the text the response would contain" in page


def test_html_guide_escapes_content_and_drops_remote_images(tmp_path: Path) -> None:
    source = (FIXTURES / "mini" / "policy.yaml").read_text(encoding="utf-8")
    source = source.replace(
        "description: Questions about medicines and their doses.",
        'description: "See ![chart](http://evil.example/x.png) and <b>raw</b> [NHS](https://nhs.uk)."',
    ).replace(
        "prompt: What is the label dose of paracetamol for adults?",
        "prompt: \"<script>alert('x')</script> What is the label dose?\"",
    )
    (tmp_path / "policy.yaml").write_text(source, encoding="utf-8")
    (tmp_path / "cyber.yaml").write_text(
        (FIXTURES / "mini" / "cyber.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    page = compile_guide(load_policy(tmp_path / "policy.yaml").policy, fmt="html")
    html = check_html(page)
    assert "script" not in html.tags
    assert "img" not in html.tags
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;b&gt;raw&lt;/b&gt;" in page
    assert '<a href="https://nhs.uk">NHS</a>' in page  # a link, not an asset


def test_markdown_guide(mini: Policy) -> None:
    text = compile_guide(mini)
    assert text.startswith("# Mini policy: labelling guide\n")
    for c in mini.categories:
        assert f'<a id="cat-{c.id}"></a>' in text
        assert f"](#cat-{c.id})" in text  # in the contents
    for r in mini.rules:
        assert f'<a id="rule-{r.id}"></a>' in text
    for e in mini.examples:
        assert f'<a id="ex-{e.id}"></a>' in text
    headings = re.findall(r"(?m)^(#+) (CYB\S*|MED\S*) ", text)
    assert headings == [
        ("###", "MED"),
        ("####", "MED.a"),
        ("###", "CYB"),
        ("####", "CYB.1"),
        ("#####", "CYB.1.a"),
        ("####", "CYB.2"),
        ("#####", "CYB.2.a"),
    ]
    # Conversation text is fenced, so Markdown inside it (a `#` comment) stays literal.
    assert "```text\nimport os\nfrom cryptography.fernet import Fernet\n# walk" in text
    assert "*Harm model* (from [CYB](#cat-CYB))" in text
    assert "*BAD response: refuse, does not violate:*" in text


def test_fence_grows_past_backticks_in_content(mini: Policy) -> None:
    example = mini.examples[0].model_copy(update={"prompt": "Run ```rm -rf``` now"})
    policy = mini.model_copy(update={"examples": [example, *mini.examples[1:]]})
    text = compile_guide(policy)
    assert "````text\nRun ```rm -rf``` now\n````" in text


def test_guide_for_one_category(mini: Policy) -> None:
    text = compile_guide(mini, category="CYB.2")
    assert "category CYB.2 Malware and its subcategories" in text
    assert '<a id="rule-CYB.2.a"></a>' in text
    assert "MED.a" not in text
    assert "CYB.1.a" not in text
    page = compile_guide(mini, fmt="html", category="CYB.2")
    html = check_html(page)
    assert {h[1:] for h in html.hrefs} - set(html.ids) == set()


def test_guide_errors(mini: Policy) -> None:
    with pytest.raises(PolicylabError):
        compile_guide(mini, category="NOPE")
    with pytest.raises(ValueError, match="unknown guide format"):
        compile_guide(mini, fmt="pdf")  # type: ignore[arg-type]
