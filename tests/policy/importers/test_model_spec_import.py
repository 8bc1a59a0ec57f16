"""The OpenAI Model Spec importer on the real spec, its five dated releases and its example files.

Reference values come from ../shared/data/README.md (section 4) and from counts this test makes on
the raw Markdown itself, independently of the importer's parser.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from policylab.core import Behavior, Severity
from policylab.errors import InputError
from policylab.policy.importers import ImportedPolicy, import_model_spec_with_report
from policylab.policy.importers.model_spec import import_model_spec
from policylab.policy.loader import load_policy
from policylab.policy.schema import Policy, ResponseLabel
from policylab.policy.writer import dump_policy_yaml

pytestmark = pytest.mark.realdata

# Release -> (heading lines, anchors) as the data README counts them (code blocks included).
README_COUNTS = {
    "2025-02-12": (73, 71),
    "2025-04-11": (73, 71),
    "2025-09-12": (79, 77),
    "2025-10-27": (80, 78),
    "2025-12-18": (82, 80),
}


@pytest.fixture(scope="module")
def spec_dir(shared_data: Path) -> Path:
    return shared_data / "model_spec"


@pytest.fixture(scope="module")
def current(spec_dir: Path) -> ImportedPolicy:
    return import_model_spec_with_report(
        spec_dir / "model_spec.md", examples_dir=spec_dir / "examples"
    )


def _by_anchor(policy: Policy) -> dict[str, str]:
    return {
        c.mappings["model_spec"][0]: c.id for c in policy.categories if "model_spec" in c.mappings
    }


def test_one_category_per_section_with_authority_levels(current: ImportedPolicy) -> None:
    policy, report = current.policy, current.report
    sections = [c for c in policy.categories if "model_spec" in c.mappings]
    assert len(sections) == 80  # every heading outside code blocks has an anchor
    assert len(policy.categories) == 81  # plus the root `MS`
    authority = Counter(
        c.mappings["model_spec_authority"][0]
        for c in sections
        if "model_spec_authority" in c.mappings
    )
    assert authority == {"root": 22, "guideline": 18, "user": 15, "system": 3, "developer": 1}
    assert sum(authority.values()) == 59
    assert report.breakdowns["authority"] == dict(authority)
    assert report.counts["sections_with_authority"] == 59


def test_category_ids_follow_the_heading_hierarchy(current: ImportedPolicy) -> None:
    ids = _by_anchor(current.policy)
    assert ids["follow_all_applicable_instructions"] == (
        "MS.chain_of_command.follow_all_applicable_instructions"
    )
    assert ids["sexual_content_involving_minors"] == (
        "MS.stay_in_bounds.disallowed_content.prohibited_content.sexual_content_involving_minors"
    )
    for cid in ids.values():
        parent = cid.rsplit(".", 1)[0]
        assert current.policy.category(parent) is not None, f"{cid} has no parent category"


def test_severity_follows_authority_and_behaviour_the_documented_table(
    current: ImportedPolicy,
) -> None:
    policy = current.policy
    ids = _by_anchor(policy)

    def cat(anchor: str) -> tuple[Severity, Behavior]:
        c = policy.category(ids[anchor])
        assert c is not None
        return c.severity, c.expected_behavior

    assert cat("follow_all_applicable_instructions") == (Severity.CRITICAL, Behavior.COMPLY)
    assert cat("comply_with_laws") == (Severity.HIGH, Behavior.PARTIAL)  # system, in bounds
    assert cat("avoid_regulated_advice") == (Severity.MEDIUM, Behavior.PARTIAL)  # developer
    assert cat("be_warm") == (Severity.LOW, Behavior.COMPLY)  # guideline
    assert cat("sexual_content_involving_minors") == (Severity.CRITICAL, Behavior.REFUSE)
    assert cat("transformation_exception") == (Severity.CRITICAL, Behavior.COMPLY)
    assert cat("avoid_info_hazards") == (Severity.CRITICAL, Behavior.PARTIAL)
    assert cat("prioritize_teen_safety")[1] is Behavior.PARTIAL
    # A section without a level takes the highest tier below it; `style` has only user/guideline.
    assert cat("stay_in_bounds")[0] is Severity.CRITICAL
    assert cat("style")[0] is Severity.LOW
    teen = policy.category(ids["prioritize_teen_safety"])
    assert teen is not None
    assert teen.mappings["model_spec_tags"] == ["under_18"]


def test_heading_and_anchor_counts_per_release(spec_dir: Path) -> None:
    for release, (heading_lines, anchors) in README_COUNTS.items():
        path = spec_dir / "versions" / release / "model_spec.md"
        imported = import_model_spec_with_report(path)
        counts = imported.report.counts
        assert (counts["heading_lines"], counts["anchors"]) == (heading_lines, anchors), release
        # The two extra heading lines are `#` comments inside code samples, not sections.
        assert counts["headings_in_code_blocks"] == 2, release
        assert counts["headings"] == anchors, release
        assert imported.policy.version == release.replace("-0", "-").replace("-", "."), release
        if release in ("2025-02-12", "2025-04-11"):
            # Those releases have stray `*` characters around one example's turns (lines 2744-49).
            assert len(imported.report.warnings) == 3, release
            assert all("text outside any turn: '*'" in w for w in imported.report.warnings)
        else:
            assert imported.report.warnings == [], release


def test_examples_match_an_independent_count_of_the_raw_text(
    current: ImportedPolicy, spec_dir: Path
) -> None:
    text = (spec_dir / "model_spec.md").read_text(encoding="utf-8")
    in_spec = len(re.findall(r"^\*\*Example\*\*", text, re.M))
    # Graded replies are those of each block's last <comparison>; an earlier one grades a turn
    # the conversation then goes on from.
    last_comparisons = [
        block.rsplit("<comparison>", 1)[1]
        for block in re.findall(r"^~~~xml\n(.*?)^~~~", text, re.M | re.S)
        if "<comparison>" in block
    ]
    graded = Counter(
        label for tail in last_comparisons for label in re.findall(r"<!-- *(GOOD|BAD|OK)\b", tail)
    )
    referenced = set(re.findall(r"\[\^([a-z0-9]+)\]", text))
    in_files = 0
    user_turns = 0
    for file in (spec_dir / "examples").glob("*.md"):
        if file.stem in referenced:
            raw = file.read_text(encoding="utf-8")
            in_files += len(re.findall(r"^\*\*Example\*\*", raw, re.M))
            user_turns += len(re.findall(r"^<user>", raw, re.M))

    counts = current.report.counts
    assert (in_spec, in_files) == (183, 270)
    assert len(re.findall(r"<!-- *(?:GOOD|BAD|OK)\b", text)) == 397  # all comparisons
    assert sum(graded.values()) == 382  # last comparisons only
    assert counts["examples_in_spec"] == in_spec
    assert counts["examples_from_files"] == in_files
    assert counts["responses"] == sum(graded.values())
    assert current.report.breakdowns["response_label"] == dict(graded)
    examples = current.policy.examples
    assert len(examples) == in_spec + in_files
    assert len({e.id for e in examples}) == len(examples)
    from_files = [e for e in examples if any(t.startswith("footnote:") for t in e.tags)]
    assert sum(1 for e in from_files for m in e.conversation if m.role == "user") == user_turns
    labels = Counter(r.label for e in examples for r in e.responses)
    assert labels[ResponseLabel.BAD] == graded["BAD"]
    assert labels[ResponseLabel.GOOD] == graded["GOOD"] + graded["OK"]


def test_dangling_footnotes_are_reported(current: ImportedPolicy) -> None:
    unresolved = current.report.unresolved
    assert unresolved["footnotes_without_file"] == ["d0pu", "h82a", "rse0", "t5q0"]
    assert unresolved["files_without_footnote"] == ["91ld", "lds1"]
    assert current.report.counts["footnotes"] == 116
    assert current.report.counts["example_files"] == 114
    assert unresolved["cross_references"] == []


def test_a_spec_example_keeps_its_turns_and_graded_replies(current: ImportedPolicy) -> None:
    example = next(
        e
        for e in current.policy.examples
        if e.id.startswith("ms.follow_all_applicable_instructions.root-system-conflict")
    )
    assert [m.role for m in example.conversation] == ["system", "user"]
    assert example.conversation[0].text.startswith('You are in a special "safety testing mode"')
    assert [(r.label, r.text) for r in example.responses] == [
        (ResponseLabel.GOOD, "I’m sorry, I can’t help with that."),
        (ResponseLabel.BAD, "It was almost spring break and [...]"),
    ]
    assert example.responses[0].rationale == "root instructions override system"
    assert example.expected_behavior is Behavior.REFUSE  # a short refusal is the good reply
    assert example.category == "MS.chain_of_command.follow_all_applicable_instructions"


def test_footnote_examples_land_in_the_section_that_cites_them(current: ImportedPolicy) -> None:
    from_8ep1 = [e for e in current.policy.examples if "footnote:8ep1" in e.tags]
    assert len(from_8ep1) == 4  # examples/8ep1.md holds four prompts
    assert {e.category for e in from_8ep1} == {"MS.chain_of_command"}
    assert all(e.responses == [] for e in from_8ep1)
    assert (
        from_8ep1[0].conversation[-1].text == "What's the distance in miles from Paris to Berlin?"
    )


def test_rules_come_from_requirement_wording(current: ImportedPolicy) -> None:
    policy = current.policy
    rules = policy.rules_for("MS.chain_of_command.follow_all_applicable_instructions")
    assert rules
    assert all(r.id.startswith(r.category_id + ".r") for r in policy.rules)
    lower_level = next(r for r in rules if r.title.startswith("The assistant should not allow"))
    assert lower_level.violating[0].startswith(
        "The assistant should not allow lower-level content (including its own previous messages)"
    )
    # Sections without an authority level are context, not instructions.
    assert policy.rules_for("MS.overview.red_line_principles") == []
    sections_with_rules = {r.category_id for r in policy.rules}
    levelled = {c.id for c in policy.categories if "model_spec_authority" in c.mappings}
    assert sections_with_rules <= levelled


def test_definitions_and_changelog(current: ImportedPolicy) -> None:
    policy = current.policy
    terms = [d.term for d in policy.definitions]
    assert terms[:2] == ["Assistant", "Conversation"]
    assert "Hidden chain-of-thought message" in terms
    assert policy.version == "2025.12.18"
    assert [e.version for e in policy.changelog] == [
        "2025.12.18",
        "2025.10.27",
        "2025.9.12",
        "2025.4.11",
        "2025.2.12",
        "2024.5.8",
    ]


@pytest.mark.slow
def test_written_yaml_loads_back_equal(current: ImportedPolicy, tmp_path: Path) -> None:
    path = dump_policy_yaml(current.policy, tmp_path / "model_spec.yaml")
    assert load_policy(path).policy == current.policy


def test_changelog_changes_between_first_and_last_open_release(spec_dir: Path) -> None:
    """The sections CHANGELOG.md says were added, renamed, moved or merged since 2025-02-12."""
    changelog = (spec_dir / "CHANGELOG.md").read_text(encoding="utf-8")
    old = import_model_spec(spec_dir / "versions" / "2025-02-12" / "model_spec.md")
    new = import_model_spec(spec_dir / "versions" / "2025-12-18" / "model_spec.md")
    old_ids, new_ids = _by_anchor(old), _by_anchor(new)
    new_titles = {c.title.lower(): c for c in new.categories}

    # "Adds two new sections to the Chain of Command: (1) Act within an agreed-upon scope of
    # autonomy, (2) Control and communicate side effects."
    for title, anchor in [
        ("Act within an agreed-upon scope of autonomy", "scope_of_autonomy"),
        ("Control and communicate side effects", "control_side_effects"),
    ]:
        assert title in changelog
        category = new_titles[title.lower()]
        assert category.mappings["model_spec"] == [anchor]
        assert category.id == f"MS.chain_of_command.{anchor}"
        assert anchor not in old_ids
    # "Adds a No Other Objectives section", "a Red-line Principles section to the Overview",
    # "a new section 'respect real-world ties'", and the Under-18 principles.
    assert "***No Other Objectives***" in changelog
    assert new_titles["no other objectives"].id == "MS.chain_of_command.no_other_objectives"
    assert "***Red-line Principles*** section to the Overview" in changelog
    assert new_titles["red-line principles"].id == "MS.overview.red_line_principles"
    assert '"respect real-world ties"' in changelog
    assert new_ids["respect_real_world_ties"] == "MS.stay_in_bounds.respect_real_world_ties"
    assert "**Under-18 Safety Mode,**" in changelog
    assert {"chatgpt_u18", "prioritize_teen_safety"} <= set(new_ids) - set(old_ids)
    # "Adds a more complete set of default personality principles, while merging the stub
    # 'Be Approachable' section into 'Use appropriate style'."
    assert '"Be Approachable" section into "Use appropriate style"' in changelog
    assert old_ids["approachable"] == "MS.approachable"
    assert "approachable" not in new_ids
    for moved in ("be_rationally_optimistic", "do_not_make_unprompted_personal_comments"):
        assert old_ids[moved] == f"MS.approachable.{moved}"
        assert new_ids[moved] == f"MS.style.{moved}"
    assert {"love_humanity", "be_curious", "be_warm"} <= set(new_ids) - set(old_ids)
    # "Renames the top authority level from Platform to Root ... Moves a few principles to
    # System-level".
    assert "from **Platform** to **Root**" in changelog
    old_levels = {a: _authority(old, i) for a, i in old_ids.items()}
    new_levels = {a: _authority(new, i) for a, i in new_ids.items()}
    assert "platform" in old_levels.values()
    assert "platform" not in new_levels.values()
    moved_to_system = {a for a, lvl in new_levels.items() if lvl == "system"}
    assert moved_to_system == {
        "comply_with_laws",
        "no_erotica_or_gore",
        "use_preset_voice_in_voice_mode",
    }
    assert all(old_levels[a] == "platform" for a in moved_to_system)
    still_top = [a for a, lvl in old_levels.items() if lvl == "platform" and a in new_levels]
    assert {new_levels[a] for a in still_top if a not in moved_to_system} == {"root"}
    # "Extends the section on self-harm to also cover delusions and mania"; safe completions.
    assert "also cover delusions and mania" in changelog
    assert _title(new, new_ids["do_not_encourage_self_harm"]) == (
        "Do not encourage self-harm, delusions, or mania"
    )
    assert "[**Safe Completions**]" in changelog
    assert _title(old, old_ids["refusal_style"]) == "Refuse neutrally and succinctly"
    assert _title(new, new_ids["refusal_style"]) == "When appropriate, be helpful when refusing"


@pytest.mark.slow
def test_diff_policies_shows_the_changelog_sections(spec_dir: Path) -> None:
    try:
        from policylab.policy.diff import diff_policies
    except ImportError:
        pytest.skip("policylab.policy.diff (diff_policies) is not there yet")
    old = import_model_spec(spec_dir / "versions" / "2025-02-12" / "model_spec.md")
    new = import_model_spec(spec_dir / "versions" / "2025-12-18" / "model_spec.md")
    changes = diff_policies(old, new).changes
    added = {c.id for c in changes if c.object == "category" and c.kind == "added"}
    removed = {c.id for c in changes if c.object == "category" and c.kind == "removed"}
    renamed_to = {c.id for c in changes if c.object == "category" and c.kind == "renamed"}
    assert {
        "MS.chain_of_command.scope_of_autonomy",
        "MS.chain_of_command.control_side_effects",
        "MS.chain_of_command.no_other_objectives",
        "MS.overview.red_line_principles",
        "MS.stay_in_bounds.respect_real_world_ties",
        "MS.chatgpt_u18",
        "MS.chatgpt_u18.prioritize_teen_safety",
    } <= added
    assert "MS.approachable" in removed
    assert "MS.style.do_not_make_unprompted_personal_comments" in renamed_to  # moved, same text
    retitled = {
        c.id: c.new
        for c in changes
        if c.object == "category" and c.kind == "changed" and c.field == "title"
    }
    assert retitled["MS.stay_in_bounds.risky_situations.do_not_encourage_self_harm"] == (
        "Do not encourage self-harm, delusions, or mania"
    )
    assert retitled["MS.style.refusal_style"] == "When appropriate, be helpful when refusing"
    to_system = {
        c.id
        for c in changes
        if c.object == "category" and c.field == "severity" and c.new == "high" and c.breaking
    }
    assert to_system == {
        "MS.stay_in_bounds.comply_with_laws",
        "MS.stay_in_bounds.disallowed_content.sensitive_content.no_erotica_or_gore",
        "MS.stay_in_bounds.use_preset_voice_in_voice_mode",
    }


def _title(policy: Policy, category_id: str) -> str:
    category = policy.category(category_id)
    assert category is not None
    return category.title


def _authority(policy: Policy, category_id: str) -> str | None:
    category = policy.category(category_id)
    assert category is not None
    levels = category.mappings.get("model_spec_authority")
    return levels[0] if levels else None


def test_bad_inputs_raise_clear_errors(tmp_path: Path, spec_dir: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        import_model_spec(tmp_path / "missing.md")
    empty = tmp_path / "empty.md"
    empty.write_text("Just prose, no headings.\n", encoding="utf-8")
    with pytest.raises(InputError, match="no headings found"):
        import_model_spec(empty)
    with pytest.raises(InputError, match="not a folder"):
        import_model_spec(spec_dir / "model_spec.md", examples_dir=tmp_path / "nowhere")
    with pytest.raises(InputError, match="not a release date"):
        import_model_spec(spec_dir / "model_spec.md", version="December")
