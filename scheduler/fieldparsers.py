"""Parsers for single values of the schedule file: one YAML node in, a typed value out.

Each raises Invalid with a message that says what is allowed; the loader adds the position.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from scheduler.timeengine.cron import CronError, CronExpr, parse_cron
from scheduler.yamlsafe import (
    BOOL,
    FLOAT,
    INT,
    NULL,
    STR,
    TIMESTAMP,
    disallowed_tag,
    mapping_entries,
    tag_of,
)


class Invalid(ValueError):
    """Raised by a value parser; `node` (default: the parsed one) and `offset` locate it."""

    def __init__(self, message: str, node: Node | None = None, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.offset = offset


Parser = Callable[[Node], Any]

_TYPE_NAMES = {
    STR: "a string",
    INT: "an integer",
    FLOAT: "a number",
    BOOL: "true or false",
    NULL: "null",
    TIMESTAMP: "a date",
}


def suggest(word: str, choices: Collection[str]) -> str:
    """` (did you mean 'cron'?)` for a near miss, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe_node(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"{_TYPE_NAMES.get(tag_of(node), 'a value')} ({node.value!r})"


def _scalar(node: Node, expected: str, *tags: str) -> str:
    if not isinstance(node, ScalarNode) or tag_of(node) not in tags:
        raise Invalid(f"expected {expected}, got {describe_node(node)}")
    return str(node.value)


def parse_str(node: Node) -> str:
    text = _scalar(node, "a string", STR)
    if not text.strip():
        raise Invalid("must not be empty")
    return text


def parse_bool(node: Node) -> bool:
    return _scalar(node, "true or false", BOOL).lower() == "true"


def int_parser(lo: int, hi: int | None = None) -> Parser:
    def parse(node: Node) -> int:
        value = _to_int(_scalar(node, "an integer", INT))
        if value < lo or (hi is not None and value > hi):
            allowed = f"{lo}-{hi}" if hi is not None else f">= {lo}"
            raise Invalid(f"{value} is out of range ({allowed})")
        return value

    return parse


def _to_int(text: str) -> int:
    text = text.replace("_", "")
    try:
        return int(text, 0)
    except ValueError:
        return int(text, 10)  # YAML 1.2 reads `010` as decimal 10


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_parser(minimum: timedelta | None = None) -> Parser:
    """A parser of `45s`, `1h30m`, `500ms` or a number of seconds; must be positive."""

    def parse(node: Node) -> timedelta:
        tag = tag_of(node)
        text = _scalar(node, "a duration such as 45s, 5m, 1h30m or 2d", STR, INT, FLOAT).strip()
        if tag in (INT, FLOAT):
            if text.lower().lstrip("+-") in (".inf", ".nan"):
                raise Invalid(f"{text} is not a duration")
            seconds = float(text.replace("_", ""))
        else:
            pos, seconds = 0, 0.0
            for match in _DURATION.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise Invalid(
                    f"{text!r} is not a duration (use 45s, 5m, 1h30m, 2d, 500ms "
                    "or a number of seconds)",
                    offset=pos,
                )
        if seconds <= 0:
            raise Invalid(f"must be a positive duration, got {text}")
        duration = timedelta(seconds=seconds)
        if minimum is not None and duration < minimum:
            raise Invalid(f"must be at least {minimum.total_seconds():g}s, got {text}")
        return duration

    return parse


def parse_datetime(node: Node) -> datetime:
    """An ISO 8601 date or date-time; naive means wall-clock time in the job's timezone."""
    text = _scalar(node, "a date-time such as 2026-01-01T00:00", STR, TIMESTAMP).strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{text!r} is not an ISO 8601 date-time (e.g. 2026-01-01T09:00)") from None


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def parse_timezone(node: Node) -> ZoneInfo:
    name = _scalar(node, "an IANA timezone name such as Europe/London", STR).strip()
    try:
        return ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(f"unknown timezone {name!r}{suggest(name, _zone_names())}") from None


def choice_parser(choices: Collection[str]) -> Parser:
    def parse(node: Node) -> str:
        text = _scalar(node, f"one of {', '.join(choices)}", STR)
        if text not in choices:
            raise Invalid(f"{text!r} is not one of {', '.join(choices)}{suggest(text, choices)}")
        return text

    return parse


def task_parser(known_tasks: Collection[str]) -> Parser:
    def parse(node: Node) -> str:
        name = parse_str(node)
        if name not in known_tasks:
            raise Invalid(
                f"task {name!r} is not registered from the jobs package{suggest(name, known_tasks)}"
            )
        return name

    return parse


def cron_parser(job_name: str) -> Callable[[Node], CronExpr]:
    def parse(node: Node) -> CronExpr:
        text = _scalar(node, "a cron expression such as '0 2 * * *'", STR)
        try:
            return parse_cron(text, hash_key=job_name)
        except CronError as exc:
            # A quoted scalar starts one column before its text.
            quote = 1 if getattr(node, "style", None) in ('"', "'") else 0
            raise Invalid(exc.message, offset=exc.offset + quote) from None

    return parse


def parse_url(node: Node) -> str:
    text = parse_str(node).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(f"{text!r} is not an http(s) URL")
    return text


def parse_json(node: Node) -> Any:
    """A JSON-compatible value (args, kwargs): no tags, string keys, no duplicate keys."""
    bad_tag = disallowed_tag(node)
    if bad_tag:
        raise Invalid(f"tag {bad_tag} is not allowed", node)
    if isinstance(node, SequenceNode):
        return [parse_json(item) for item in node.value]
    if isinstance(node, MappingNode):
        result: dict[str, Any] = {}
        for entry, explicit in mapping_entries(node):
            if tag_of(entry.key_node) != STR:
                raise Invalid("keys must be strings", entry.key_node)
            if explicit and entry.key in result:
                raise Invalid(f"duplicate key {entry.key!r}", entry.key_node)
            result[entry.key] = parse_json(entry.value)
        return result
    tag, text = tag_of(node), str(node.value)
    if tag == INT:
        return _to_int(text)
    if tag == FLOAT:
        lowered = text.lower()
        if lowered.lstrip("+-") in (".inf", ".nan"):
            raise Invalid(f"{text} cannot be sent as JSON", node)
        return float(text.replace("_", ""))
    if tag == BOOL:
        return text.lower() == "true"
    if tag == NULL:
        return None
    return text  # strings, and dates kept as the ISO text they were written as


def parse_args(node: Node) -> tuple[Any, ...]:
    if not isinstance(node, SequenceNode):
        raise Invalid(f"expected a list, got {describe_node(node)}")
    return tuple(parse_json(node))


def parse_kwargs(node: Node) -> dict[str, Any]:
    if not isinstance(node, MappingNode):
        raise Invalid(f"expected a mapping, got {describe_node(node)}")
    value: dict[str, Any] = parse_json(node)
    return value
