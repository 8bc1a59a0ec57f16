"""The local tools an agent is evaluated with: files, web, mail and payments, all fake and safe.

Each task gets a fresh `Environment`: a sandbox folder (a temporary directory that paths cannot
leave), canned web pages, a mailbox and a payment account, set up from the task's `setup`.
Nothing leaves the machine: a sent email lands in an outbox, a payment in a ledger. Every tool is
deterministic: the same calls on the same setup give the same results, byte for byte, and no
result shows the sandbox's real location. A call the tool cannot serve (bad arguments, a missing
file, insufficient funds) returns `{"error": ...}` to the agent, as a real API would.

Tool groups (`--tools files,web,mail,payments`):

- files: `list_files`, `read_file`, `write_file`, `delete_file`
- web: `search_web`, `fetch_url`
- mail: `list_emails`, `read_email`, `send_email`
- payments: `get_balance`, `list_payees`, `send_payment`
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from policylab.errors import PolicylabError
from policylab.models.base import ToolSpec

__all__ = [
    "GROUPS",
    "TOOL_NAMES",
    "Email",
    "Environment",
    "Page",
    "Setup",
    "ToolResult",
    "parse_groups",
    "tool_names",
]

MAX_FILE_BYTES = 100_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Page(_Strict):
    """A canned web page."""

    title: str
    text: str


class Email(_Strict):
    """A message in the agent's mailbox."""

    id: str | None = None
    sender: str = Field(alias="from")
    to: str | None = None
    subject: str
    body: str
    date: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Setup(_Strict):
    """The world a task starts in. Every part is optional; a tool group without setup is empty."""

    files: dict[str, str] = Field(
        default_factory=dict, description="Path (relative, `/`-separated) -> text content."
    )
    pages: dict[str, Page] = Field(default_factory=dict, description="URL -> page.")
    inbox: list[Email] = Field(default_factory=list)
    address: str = Field(default="me@example.com", description="The user's email address.")
    balance: float = Field(default=0.0, ge=0.0)
    currency: str = "USD"
    payees: dict[str, str] = Field(
        default_factory=dict, description="Saved payee name -> account id (`acct-...`)."
    )


@dataclass(frozen=True)
class ToolResult:
    """What a tool returned (JSON text, as the agent sees it) and whether it succeeded."""

    content: str
    ok: bool


class _RefusedError(Exception):
    """A call the tool cannot serve; its message goes back to the agent."""


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _spec(name: str, description: str, properties: dict[str, Any], required: list[str]) -> ToolSpec:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
        },
    }


_STR = {"type": "string"}
_NUM = {"type": "number"}


@dataclass(frozen=True)
class _Tool:
    spec: ToolSpec
    run: Callable[[dict[str, Any]], Any]

    @property
    def name(self) -> str:
        return str(self.spec["function"]["name"])


def _check_arguments(spec: ToolSpec, args: dict[str, Any]) -> None:
    params = spec["function"]["parameters"]
    props: dict[str, Any] = params["properties"]
    unknown = sorted(set(args) - set(props))
    if unknown:
        raise _RefusedError(f"unknown argument(s) {unknown}; this tool takes {sorted(props)}")
    missing = [k for k in params["required"] if k not in args]
    if missing:
        raise _RefusedError(f"missing required argument(s) {missing}")
    for key, value in args.items():
        kind = props[key]["type"]
        ok = (
            isinstance(value, str)
            if kind == "string"
            else isinstance(value, int | float) and not isinstance(value, bool)
        )
        if not ok:
            raise _RefusedError(f"argument {key!r} must be a {kind}, got {_json(value)}")


class _Files:
    def __init__(self, root: Path, files: Mapping[str, str]) -> None:
        self.root = root
        for rel, content in files.items():
            target = self._path(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")

    def _path(self, rel: str) -> Path:
        """The real path of `rel` inside the sandbox; anything that would leave it is refused."""
        pure = PurePosixPath(rel.replace("\\", "/"))
        if pure.is_absolute() or any(part == ".." for part in pure.parts) or ":" in rel:
            raise _RefusedError(
                f"{rel!r} is outside the workspace: use a relative path without '..'"
            )
        target = (self.root / pure).resolve()
        if target != self.root and not target.is_relative_to(self.root):
            raise _RefusedError(f"{rel!r} is outside the workspace")
        return target

    def _shown(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() or "."

    def tools(self) -> list[_Tool]:
        return [
            _Tool(
                _spec(
                    "list_files",
                    "List the files and folders in a folder of the workspace.",
                    {"path": _STR | {"description": "Folder, relative to the workspace ('.')."}},
                    [],
                ),
                self.list_files,
            ),
            _Tool(
                _spec("read_file", "Read a text file.", {"path": _STR}, ["path"]), self.read_file
            ),
            _Tool(
                _spec(
                    "write_file",
                    "Write a text file (replacing it if it exists).",
                    {"path": _STR, "content": _STR},
                    ["path", "content"],
                ),
                self.write_file,
            ),
            _Tool(
                _spec("delete_file", "Delete a file.", {"path": _STR}, ["path"]), self.delete_file
            ),
        ]

    def list_files(self, args: dict[str, Any]) -> Any:
        folder = self._path(args.get("path", "."))
        if not folder.is_dir():
            raise _RefusedError(f"no folder {args.get('path', '.')!r}")
        entries = sorted(self._shown(p) + ("/" if p.is_dir() else "") for p in folder.iterdir())
        return {"path": self._shown(folder), "entries": entries}

    def read_file(self, args: dict[str, Any]) -> Any:
        path = self._path(args["path"])
        if not path.is_file():
            raise _RefusedError(f"no file {args['path']!r}")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise _RefusedError(f"{args['path']!r} is larger than {MAX_FILE_BYTES} bytes")
        return {"path": self._shown(path), "content": path.read_text(encoding="utf-8")}

    def write_file(self, args: dict[str, Any]) -> Any:
        path = self._path(args["path"])
        if path.is_dir():
            raise _RefusedError(f"{args['path']!r} is a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(args["content"], encoding="utf-8")
        return {"written": self._shown(path), "bytes": len(args["content"].encode("utf-8"))}

    def delete_file(self, args: dict[str, Any]) -> Any:
        path = self._path(args["path"])
        if not path.is_file():
            raise _RefusedError(f"no file {args['path']!r}")
        path.unlink()
        return {"deleted": self._shown(path)}


class _Web:
    def __init__(self, pages: Mapping[str, Page]) -> None:
        self.pages = dict(pages)

    def tools(self) -> list[_Tool]:
        return [
            _Tool(
                _spec(
                    "search_web",
                    "Search the web; returns matching pages' addresses and titles.",
                    {"query": _STR},
                    ["query"],
                ),
                self.search,
            ),
            _Tool(
                _spec("fetch_url", "Fetch a web page's text.", {"url": _STR}, ["url"]), self.fetch
            ),
        ]

    def search(self, args: dict[str, Any]) -> Any:
        words = [w for w in str(args["query"]).lower().split() if w]
        hits = [
            {"url": url, "title": page.title, "snippet": page.text[:160]}
            for url, page in sorted(self.pages.items())
            if words and all(w in f"{page.title}\n{page.text}".lower() for w in words)
        ]
        return {"query": args["query"], "results": hits}

    def fetch(self, args: dict[str, Any]) -> Any:
        page = self.pages.get(args["url"])
        if page is None:
            raise _RefusedError(f"404: no page at {args['url']}")
        return {"url": args["url"], "title": page.title, "text": page.text}


class _Mail:
    def __init__(self, inbox: Sequence[Email], address: str) -> None:
        self.address = address
        self.inbox = [
            e if e.id else e.model_copy(update={"id": f"m{i}"}) for i, e in enumerate(inbox, 1)
        ]
        self.outbox: list[dict[str, Any]] = []

    def tools(self) -> list[_Tool]:
        return [
            _Tool(_spec("list_emails", "List the emails in the inbox.", {}, []), self.list_emails),
            _Tool(
                _spec("read_email", "Read one email by its id.", {"id": _STR}, ["id"]), self.read
            ),
            _Tool(
                _spec(
                    "send_email",
                    "Send an email from the user's address.",
                    {"to": _STR, "subject": _STR, "body": _STR},
                    ["to", "subject", "body"],
                ),
                self.send,
            ),
        ]

    def list_emails(self, args: dict[str, Any]) -> Any:
        return {
            "emails": [
                {"id": e.id, "from": e.sender, "subject": e.subject, "date": e.date}
                for e in self.inbox
            ]
        }

    def read(self, args: dict[str, Any]) -> Any:
        found = next((e for e in self.inbox if e.id == args["id"]), None)
        if found is None:
            raise _RefusedError(f"no email with id {args['id']!r}")
        return found.model_dump(mode="json", by_alias=True, exclude_none=True)

    def send(self, args: dict[str, Any]) -> Any:
        if "@" not in args["to"]:
            raise _RefusedError(f"{args['to']!r} is not an email address")
        sent_id = f"sent-{len(self.outbox) + 1}"
        self.outbox.append({"id": sent_id, "from": self.address, **args})
        return {"status": "sent", "id": sent_id, "to": args["to"]}


class _Payments:
    def __init__(self, balance: float, currency: str, payees: Mapping[str, str]) -> None:
        self.balance = round(balance, 2)
        self.currency = currency
        self.payees = dict(payees)
        self.ledger: list[dict[str, Any]] = []

    def tools(self) -> list[_Tool]:
        return [
            _Tool(_spec("get_balance", "The account's balance.", {}, []), self.get_balance),
            _Tool(_spec("list_payees", "The saved payees.", {}, []), self.list_payees),
            _Tool(
                _spec(
                    "send_payment",
                    "Send money from the user's account to a saved payee (by name) or an account "
                    "id (acct-...). Payments cannot be undone.",
                    {"to": _STR, "amount": _NUM, "memo": _STR},
                    ["to", "amount"],
                ),
                self.send_payment,
            ),
        ]

    def get_balance(self, args: dict[str, Any]) -> Any:
        return {"balance": self.balance, "currency": self.currency}

    def list_payees(self, args: dict[str, Any]) -> Any:
        return {"payees": [{"name": n, "account": a} for n, a in sorted(self.payees.items())]}

    def send_payment(self, args: dict[str, Any]) -> Any:
        to = str(args["to"]).strip()
        by_name = {n.lower(): a for n, a in self.payees.items()}
        account = by_name.get(to.lower()) or (to if to.startswith("acct-") else None)
        if account is None:
            raise _RefusedError(f"unknown payee {to!r}: use a saved payee's name or an account id")
        amount = round(float(args["amount"]), 2)
        if amount <= 0:
            raise _RefusedError("the amount must be positive")
        if amount > self.balance:
            raise _RefusedError(f"insufficient funds: balance {self.balance:.2f} {self.currency}")
        self.balance = round(self.balance - amount, 2)
        payment = {
            "status": "sent",
            "payment_id": f"pay-{len(self.ledger) + 1}",
            "to": account,
            "amount": amount,
            "currency": self.currency,
            "memo": args.get("memo"),
            "balance": self.balance,
        }
        self.ledger.append(payment)
        return payment


GROUPS: tuple[str, ...] = ("files", "web", "mail", "payments")
TOOL_NAMES: dict[str, tuple[str, ...]] = {
    "files": ("list_files", "read_file", "write_file", "delete_file"),
    "web": ("search_web", "fetch_url"),
    "mail": ("list_emails", "read_email", "send_email"),
    "payments": ("get_balance", "list_payees", "send_payment"),
}


def parse_groups(text: str | Sequence[str]) -> tuple[str, ...]:
    """`files,web` (or a list) as tool groups in canonical order; unknown names are an error."""
    names = text.split(",") if isinstance(text, str) else list(text)
    wanted = {n.strip() for n in names if n.strip()}
    unknown = sorted(wanted - set(GROUPS))
    if unknown:
        raise PolicylabError(
            f"unknown tool group(s) {unknown}", hint=f"choose from {', '.join(GROUPS)}"
        )
    if not wanted:
        raise PolicylabError("no tool group given", hint=f"choose from {', '.join(GROUPS)}")
    return tuple(g for g in GROUPS if g in wanted)


def tool_names(groups: Sequence[str] = GROUPS) -> list[str]:
    """The names of the tools in `groups` (for linting a policy's action rules)."""
    return [name for g in parse_groups(groups) for name in TOOL_NAMES[g]]


@dataclass
class Environment:
    """The tools of one task, with their state. Use as a context manager: the sandbox folder is
    removed on exit."""

    setup: Setup
    groups: tuple[str, ...] = GROUPS
    _root: Path | None = field(default=None, init=False, repr=False)
    _tools: dict[str, _Tool] = field(default_factory=dict, init=False, repr=False)
    _mail: _Mail | None = field(default=None, init=False, repr=False)
    _payments: _Payments | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> Environment:
        self.groups = parse_groups(self.groups)
        parts: list[_Files | _Web | _Mail | _Payments] = []
        if "files" in self.groups:
            self._root = Path(tempfile.mkdtemp(prefix="policylab-agent-")).resolve()
            parts.append(_Files(self._root, self.setup.files))
        if "web" in self.groups:
            parts.append(_Web(self.setup.pages))
        if "mail" in self.groups:
            self._mail = _Mail(self.setup.inbox, self.setup.address)
            parts.append(self._mail)
        if "payments" in self.groups:
            self._payments = _Payments(self.setup.balance, self.setup.currency, self.setup.payees)
            parts.append(self._payments)
        self._tools = {tool.name: tool for part in parts for tool in part.tools()}
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def specs(self) -> list[ToolSpec]:
        """The tools in the OpenAI `tools` format, in a fixed order."""
        return [tool.spec for tool in self._tools.values()]

    def call(self, name: str, arguments: str) -> ToolResult:
        """Run one tool call as the agent made it (arguments as a JSON string)."""
        tool = self._tools.get(name)
        if tool is None:
            return ToolResult(
                _json({"error": f"no tool named {name!r}; tools: {sorted(self._tools)}"}), False
            )
        try:
            parsed = orjson.loads(arguments) if arguments.strip() else {}
        except orjson.JSONDecodeError:
            return ToolResult(_json({"error": "the arguments are not valid JSON"}), False)
        if not isinstance(parsed, dict):
            return ToolResult(_json({"error": "the arguments must be a JSON object"}), False)
        try:
            _check_arguments(tool.spec, parsed)
            return ToolResult(_json(tool.run(parsed)), True)
        except _RefusedError as exc:
            return ToolResult(_json({"error": str(exc)}), False)

    @property
    def outbox(self) -> list[dict[str, Any]]:
        """Emails the agent sent."""
        return list(self._mail.outbox) if self._mail else []

    @property
    def ledger(self) -> list[dict[str, Any]]:
        """Payments the agent made."""
        return list(self._payments.ledger) if self._payments else []

    def side_effects(self) -> dict[str, Any]:
        """What the agent changed in the world: emails sent, payments made, files now present."""
        out: dict[str, Any] = {}
        if self._mail is not None:
            out["emails_sent"] = self.outbox
        if self._payments is not None:
            out["payments"] = self.ledger
            out["balance"] = self._payments.balance
        if self._root is not None:
            out["files"] = sorted(
                p.relative_to(self._root).as_posix() for p in self._root.rglob("*") if p.is_file()
            )
        return out
