"""A campaign's final labels as JSONL, as Label Studio tasks, and as an Argilla 2 dataset folder.

- JSONL: one object per item, with the conversation, the response, the final `label` and where it
  came from; `read_gold` reads it back as known answers for a later campaign.
- Label Studio: a JSON list of tasks (`data` plus one `ground_truth` annotation whose `result`
  holds `choices` and `textarea` values) and the matching labelling config (XML), following
  Label Studio's task format.
- Argilla 2: the folder `Dataset.to_disk` writes and `Dataset.from_disk` reads: `records.json`
  (records with `fields`, `metadata` and the final label as `suggestions`) and
  `.argilla/settings.json` / `.argilla/dataset.json`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import orjson

from policylab.campaigns.schema import LabelSchema
from policylab.chat import ChatMessage, transcript_text
from policylab.errors import PolicylabError


@dataclass(frozen=True)
class FinalRecord:
    """One item with its final label."""

    id: str
    eval_set: str
    messages: list[dict[str, Any]]
    response: str | None
    label: dict[str, Any]
    source: str
    """`consensus`, `adjudication`, `gold` or `dawid_skene`."""
    n_labels: int
    metadata: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, str] = field(default_factory=dict)
    policy_ambiguous: bool = False
    ambiguous_rule_ids: list[str] = field(default_factory=list)

    @property
    def conversation_text(self) -> str:
        return transcript_text([ChatMessage.model_validate(m) for m in self.messages])


def jsonl_row(record: FinalRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "eval_set": record.eval_set,
        "messages": record.messages,
        "response": record.response,
        "label": record.label,
        "source": record.source,
        "n_labels": record.n_labels,
        "policy": record.policy,
        "policy_ambiguous": record.policy_ambiguous,
        "ambiguous_rule_ids": record.ambiguous_rule_ids,
        "metadata": record.metadata,
    }


def write_jsonl(records: Iterable[FinalRecord], path: str | Path) -> int:
    """Write the gold set as JSONL; returns how many records were written."""
    n = 0
    with Path(path).open("wb") as out:
        for record in records:
            out.write(orjson.dumps(jsonl_row(record)) + b"\n")
            n += 1
    return n


# -- Label Studio ----------------------------------------------------------------------------------
def label_studio_config(schema: LabelSchema) -> str:
    """The Label Studio labelling config (XML) matching `label_studio_tasks`."""

    def choices(name: str, values: Sequence[str], *, multiple: bool = False) -> str:
        kind = "multiple" if multiple else "single"
        inner = "".join(f"<Choice value={quoteattr(v)}/>" for v in values)
        return f'  <Choices name="{name}" toName="conversation" choice="{kind}">{inner}</Choices>'

    lines = ["<View>", '  <Text name="conversation" value="$conversation"/>']
    if schema.mode == "response":
        lines.append('  <Text name="response" value="$response"/>')
    lines.append(choices("behavior", [b.value for b in schema.behaviors]))
    if schema.ask_violation:
        lines.append(choices("violation", ["yes", "no"]))
    if schema.categories:
        lines.append(choices("category", [c.value for c in schema.categories]))
    if schema.rules:
        lines.append(choices("rule_ids", [r.value for r in schema.rules], multiple=True))
    lines.append('  <TextArea name="rationale" toName="conversation"/>')
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _ls_result(name: str, kind: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"from_name": name, "to_name": "conversation", "type": kind, "value": value}


def label_studio_tasks(records: Iterable[FinalRecord], schema: LabelSchema) -> list[dict[str, Any]]:
    """Tasks for Label Studio's JSON import, each with its final label as a ground-truth
    annotation."""
    tasks = []
    for r in records:
        label = r.label
        result = [_ls_result("behavior", "choices", {"choices": [label["behavior"]]})]
        if schema.ask_violation and label.get("violation") is not None:
            yes = "yes" if label["violation"] else "no"
            result.append(_ls_result("violation", "choices", {"choices": [yes]}))
        if label.get("category"):
            result.append(_ls_result("category", "choices", {"choices": [label["category"]]}))
        if label.get("rule_ids"):
            result.append(_ls_result("rule_ids", "choices", {"choices": list(label["rule_ids"])}))
        if label.get("rationale"):
            result.append(_ls_result("rationale", "textarea", {"text": [label["rationale"]]}))
        data: dict[str, Any] = {
            "conversation": r.conversation_text,
            "item_id": r.id,
            "eval_set": r.eval_set,
        }
        if schema.mode == "response":
            data["response"] = r.response or ""
        meta: dict[str, Any] = dict(r.metadata)
        meta.update(label_source=r.source, n_labels=r.n_labels)
        task: dict[str, Any] = {
            "data": data,
            "annotations": [{"result": result, "ground_truth": True}],
            "meta": meta,
        }
        tasks.append(task)
    return tasks


def write_label_studio(
    records: Iterable[FinalRecord], schema: LabelSchema, path: str | Path
) -> tuple[Path, Path]:
    """Write the tasks (JSON) to `path` and the labelling config beside it (`.xml`)."""
    target = Path(path)
    tasks = label_studio_tasks(records, schema)
    target.write_bytes(orjson.dumps(tasks, option=orjson.OPT_INDENT_2))
    config = target.with_suffix(".xml")
    config.write_text(label_studio_config(schema), encoding="utf-8")
    return target, config


# -- Argilla 2 -------------------------------------------------------------------------------------
def _label_question(name: str, title: str, values: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "description": None,
        "required": name == "behavior",
        "settings": {
            "type": "label_selection",
            "options": [{"value": v, "text": t, "description": None} for v, t in values],
            "visible_options": len(values) if len(values) >= 3 else None,
        },
    }


def argilla_settings(schema: LabelSchema, *, guidelines: str | None = None) -> dict[str, Any]:
    """The dataset settings, as `rg.Settings.to_json` writes them."""
    questions = [
        _label_question(
            "behavior",
            "What does the response do?" if schema.ask_violation else "What should a response do?",
            [(b.value, b.title) for b in schema.behaviors],
        ),
    ]
    if schema.ask_violation:
        questions.append(
            _label_question(
                "violation", "Does it violate the policy?", [("yes", "yes"), ("no", "no")]
            )
        )
    if schema.categories:
        questions.append(
            _label_question(
                "category",
                "Category",
                [(c.value, f"{c.value} {c.title}") for c in schema.categories],
            )
        )
    if schema.rules:
        questions.append(
            {
                "name": "rule_ids",
                "title": "Rules",
                "description": None,
                "required": False,
                "settings": {
                    "type": "multi_label_selection",
                    "options": [
                        {"value": r.value, "text": f"{r.value} {r.title}", "description": None}
                        for r in schema.rules
                    ],
                    "visible_options": len(schema.rules) if len(schema.rules) >= 3 else None,
                    "options_order": "natural",
                },
            }
        )
    questions.append(
        {
            "name": "rationale",
            "title": "Rationale",
            "description": None,
            "required": False,
            "settings": {"type": "text", "use_markdown": False},
        }
    )
    fields = [
        {
            "name": "conversation",
            "title": "Conversation",
            "required": True,
            "description": None,
            "settings": {"type": "text", "use_markdown": False},
        }
    ]
    if schema.mode == "response":
        fields.append(
            {
                "name": "response",
                "title": "Response",
                "required": False,
                "description": None,
                "settings": {"type": "text", "use_markdown": False},
            }
        )
    metadata = [
        {
            "name": name,
            "title": name,
            "visible_for_annotators": True,
            "settings": {"type": "terms", "values": None, "visible_for_annotators": True},
        }
        for name in ("eval_set", "source", "label_source")
    ]
    return {
        "guidelines": guidelines,
        "questions": questions,
        "fields": fields,
        "vectors": [],
        "metadata": metadata,
        "allow_extra_metadata": True,
    }


def argilla_record(record: FinalRecord, schema: LabelSchema) -> dict[str, Any]:
    """One record as `rg.Record.to_dict` gives it; the final label rides as suggestions."""
    agent = f"policylab:{record.source}"
    label = record.label

    def suggestion(value: Any) -> dict[str, Any]:
        return {"value": value, "score": None, "agent": agent}

    suggestions = {"behavior": suggestion(label["behavior"])}
    if schema.ask_violation and label.get("violation") is not None:
        suggestions["violation"] = suggestion("yes" if label["violation"] else "no")
    if label.get("category"):
        suggestions["category"] = suggestion(label["category"])
    if label.get("rule_ids"):
        suggestions["rule_ids"] = suggestion(list(label["rule_ids"]))
    if label.get("rationale"):
        suggestions["rationale"] = suggestion(label["rationale"])
    fields = {"conversation": record.conversation_text}
    if schema.mode == "response":
        fields["response"] = record.response or ""
    return {
        "id": f"{record.eval_set}/{record.id}",
        "fields": fields,
        "metadata": {
            "eval_set": record.eval_set,
            "source": str(record.metadata.get("source") or ""),
            "label_source": record.source,
        },
        "suggestions": suggestions,
        "responses": {},
        "vectors": {},
        "_server_id": None,
    }


def write_argilla(
    records: Iterable[FinalRecord],
    schema: LabelSchema,
    folder: str | Path,
    *,
    name: str,
    guidelines: str | None = None,
) -> Path:
    """Write an Argilla 2 dataset folder (for `rg.Dataset.from_disk`); the folder must be empty."""
    target = Path(folder)
    if target.exists() and any(target.iterdir()):
        raise PolicylabError(
            f"{target} is not empty", hint="Argilla datasets are written to a new or empty folder"
        )
    config = target / ".argilla"
    config.mkdir(parents=True, exist_ok=True)
    dataset = {
        "id": None,
        "name": name,
        "status": "draft",
        "guidelines": guidelines,
        "allow_extra_metadata": True,
        "distribution": None,
        "workspace_id": None,
        "last_activity_at": None,
        "inserted_at": None,
        "updated_at": None,
    }
    (config / "dataset.json").write_bytes(orjson.dumps(dataset))
    settings = argilla_settings(schema, guidelines=guidelines)
    (config / "settings.json").write_bytes(orjson.dumps(settings))
    rows = [argilla_record(r, schema) for r in records]
    (target / "records.json").write_bytes(orjson.dumps(rows))
    return target
