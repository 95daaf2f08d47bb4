"""The code blocks of a Markdown document, as the docs-commands test runs them.

- ```sh (or bash, shell): one command per line (a trailing backslash continues it); run in order.
- ```python: a script, run as a whole.
- ```json output / ```text output, directly after one of those: what its last command prints. JSON is
  compared key by key (the keys shown must be there with those values; "…" stands for any value);
  text line by line, where "…" stands for any run of characters.
- ```r, ```powerquery: shown, not run (no R or Excel in CI); every API address in them must be one a
  command of the same document requested, so they cannot ask for something else.
- A block without a language must not hold a command (give it `sh`, or `text` for what is not one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

RUNNABLE = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python"}
SHOWN_ONLY = {"r", "powerquery"}
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
OPTIONAL_FLAG = re.compile(r"\[(--[^\[\]]*)\]")  # usage syntax: "[--from DATE]" is run with the flag
COMMAND_WORDS = ("./dev", "vardkoll ", ".venv/", "curl ", "sudo ", "cc ", "echo ", "mosquitto_pub ", "python", "time ")
API_ADDRESS = re.compile(r"api/v1/[A-Za-z0-9_./{}%-]+")  # with or without the leading slash


@dataclass
class Block:
    doc: str
    line: int  # where the block starts in the document (1-based)
    language: str
    body: str
    output: "Block | None" = None  # the ```… output block that follows it
    commands: list[str] = field(default_factory=list)  # sh only

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def shell_commands(body: str) -> list[str]:
    """The logical lines of a shell block: continuations joined, blank and comment lines left out, the
    optional flags of usage syntax ("[--flag VALUE]") made plain flags."""
    commands: list[str] = []
    pending = ""
    for raw in body.splitlines():
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(OPTIONAL_FLAG.sub(r"\1", line.strip()))
    return commands


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found: list[Block] = []
    previous_end = -1
    for match in FENCE.finditer(text):
        words = match["info"].split()
        language = words[0].lower() if words else ""
        block = Block(path.name, text.count("\n", 0, match.start()) + 1, language, match["body"])
        if "output" in words[1:]:
            follows = found[-1] if found and not text[previous_end : match.start()].strip() else None
            if follows is None or follows.language not in RUNNABLE:
                raise AssertionError(f"{block.where}: an output block must directly follow a sh or python block")
            follows.output = block
        else:
            if block.language == "sh" or block.language in ("bash", "shell"):
                block.language = "sh"
                block.commands = shell_commands(block.body)
            found.append(block)
        previous_end = match.end()
    return found


def looks_like_a_command(body: str) -> bool:
    return any(line.strip().startswith(COMMAND_WORDS) for line in body.splitlines())


def matches_json(shown: object, actual: object, where: str = "") -> list[str]:
    """How `actual` differs from what the docs show (empty when it matches)."""
    if shown == "…":
        return []
    if isinstance(shown, dict):
        if not isinstance(actual, dict):
            return [f"{where or '.'}: expected an object, got {actual!r}"]
        problems = []
        for key, value in shown.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing")
            else:
                problems += matches_json(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(shown, list):
        if not isinstance(actual, list) or len(actual) != len(shown):
            return [f"{where or '.'}: expected {len(shown)} items, got {actual!r}"[:300]]
        return [p for i, (s, a) in enumerate(zip(shown, actual)) for p in matches_json(s, a, f"{where}[{i}]")]
    return [] if shown == actual else [f"{where or '.'}: the docs say {shown!r}, the command gave {actual!r}"]


def matches_text(shown: str, actual: str) -> bool:
    pattern = "\n".join(".*".join(re.escape(part) for part in line.rstrip().split("…")) for line in shown.strip().splitlines())
    return re.fullmatch(pattern, "\n".join(line.rstrip() for line in actual.strip().splitlines())) is not None
