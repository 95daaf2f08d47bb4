"""Typed settings for the collector and its connectors: msgspec structs, snake_case keys, unknown keys refused.

Every component's config (collector/config.py) and every connector's `Config` is a `Settings` subclass,
read from a parsed TOML or JSON document with `parse`. A document that does not fit raises
`SettingsError`, whose `problems` name each wrong key by its place (`outbox.max_event`,
`connectors.0.folder`) and say what is wrong; nothing is coerced silently and no traceback reaches the user.

Why not pydantic (as the server uses): building pydantic models cost the collector 2.3 MB resident (its
schema machinery, each model's validator; bench/collector.py), of SPEC 6's 40 MB on a Pi; msgspec, which
the protocol already loads, checks the same rules for next to nothing (docs/benchmarks.md, "Collector").
Unlike pydantic, msgspec stops at the first problem: an error names one key, the next is named once it is
fixed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import msgspec

from vardkoll.protocol.local_time import check_time_zone

S = TypeVar("S", bound="Settings")

_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


class SecretText:
    """A password or token from the config: its value only through `get_secret_value()`, never in a repr,
    a log line or an error message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretText('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretText) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SettingsError(ValueError):
    """Settings that do not fit their model. `problems`: (place, what is wrong) for each, the place as
    dotted keys and list positions (`connectors.0.folder`), empty for the document itself."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(self.text())

    def text(self) -> str:
        return "; ".join(f"{place or '(top)'}: {message}" for place, message in self.problems)


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every typed config. A sub-config given as a dict (`CollectorConfig(outbox={"path": p})`)
    is read into its own type, as `parse` would; so is a list of tables for a list of a type that reads
    itself (`from_document`). A subclass with checks of its own overrides `check()`
    and raises ValueError("key: what is wrong")."""

    time_zone_keys: ClassVar[tuple[str, ...]] = ()  # keys naming an IANA time zone (the protocol's rule)

    def __post_init__(self) -> None:
        for name, kind in _nested(type(self)).items():
            value = getattr(self, name)
            if isinstance(value, dict):
                msgspec.structs.force_setattr(self, name, parse(kind, value))
            elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
                msgspec.structs.force_setattr(self, name, parse(kind, value))
        for name in self.time_zone_keys:
            try:
                check_time_zone(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        self.check()

    def check(self) -> None:
        """Rules across keys or beyond a type; runs after the keys are read."""

    @classmethod
    def parse(cls: type[S], document: Any) -> S:
        return parse(cls, document)


def parse(kind: type[S], document: Any) -> S:
    """`document` (a parsed TOML or JSON value) as `kind`; SettingsError says what does not fit and where."""
    try:
        return msgspec.convert(document, kind, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        raise SettingsError([_problem(str(exc))]) from None


def as_document(settings: Settings) -> dict[str, Any]:
    """The settings as a document `parse` reads back into the same settings. Secrets are in it as plain
    text: only for building a new config in memory, never to be written out or logged."""
    document: dict[str, Any] = msgspec.to_builtins(settings, enc_hook=_encode)
    return document


def _decode(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, (str, os.PathLike)):
        return Path(value)
    if kind is SecretText:
        if isinstance(value, SecretText):
            return value
        if isinstance(value, str):
            return SecretText(value)
    if hasattr(kind, "from_document"):  # a type that reads itself (config.ConnectorEntry); ValueError names the key
        return kind.from_document(value)
    raise NotImplementedError  # msgspec then reports "Expected `...`, got `...`" at the key


def _encode(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, SecretText):
        return value.get_secret_value()
    if hasattr(value, "to_document"):
        return value.to_document()
    raise NotImplementedError


def _problem(text: str) -> tuple[str, str]:
    """msgspec's message as (place, what is wrong) in the collector's words."""
    path, message = "", text
    found = _AT.match(text)
    if found:
        path, message = found["path"], found["message"]
    place = re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")
    for pattern, wording in ((_UNKNOWN, "Extra inputs are not permitted"), (_MISSING, "Field required")):
        matched = pattern.match(message)
        if matched:
            return (f"{place}.{matched['field']}" if place else matched["field"]), wording
    key, colon, rest = message.partition(": ")
    if colon and re.fullmatch(r"[a-z_][a-z0-9_.]*", key):  # a check that named its key ("unit: must be ...")
        return (f"{place}.{key}" if place else key), rest
    return place, message


_NESTED: dict[type, dict[str, Any]] = {}


def _nested(kind: type) -> dict[str, Any]:
    """The fields of `kind` whose type is a Settings struct or a list of a type that reads itself."""
    if kind not in _NESTED:
        nested = {}
        for field in msgspec.structs.fields(kind):
            if isinstance(field.type, type) and issubclass(field.type, Settings):
                nested[field.name] = field.type
            elif getattr(field.type, "__origin__", None) is list and hasattr(field.type.__args__[0], "from_document"):
                nested[field.name] = field.type  # list[...]
        _NESTED[kind] = nested
    return _NESTED[kind]
