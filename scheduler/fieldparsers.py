"""Parsers for single values of the schedule file: one YAML node in, a typed value out.

Each raises Invalid with a message that says what is allowed; the loader adds the position.
"""

from __future__ import annotations

import difflib
import math
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
    text = _scalar(node, "true or false", BOOL).lower()
    if text not in ("true", "false"):  # an explicit `!!bool maybe`
        raise Invalid(f"expected true or false, got {text!r}")
    return text == "true"


def int_parser(lo: int, hi: int | None = None) -> Parser:
    def parse(node: Node) -> int:
        text = _scalar(node, "an integer", INT)
        try:
            value = _to_int(text)
        except ValueError:  # an explicit `!!int abc`
            raise Invalid(f"{text!r} is not an integer") from None
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


class DurationError(ValueError):
    """Raised by parse_duration_text; `offset` is where the text stops making sense."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


def parse_duration_text(text: str, *, allow_number: bool = True) -> timedelta:
    """`45s`, `1h30m`, `500ms`, `2d` (or a number of seconds) as a positive timedelta."""
    text = text.strip()
    if allow_number:
        try:
            return _positive(float(text.replace("_", "")), text)
        except ValueError as exc:
            if isinstance(exc, DurationError):
                raise
    pos, seconds = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise DurationError(
            f"{text!r} is not a duration (use 45s, 5m, 1h30m, 2d, 500ms or a number of seconds)",
            offset=pos,
        )
    return _positive(seconds, text)


def _positive(seconds: float, text: str) -> timedelta:
    if not math.isfinite(seconds):
        raise DurationError(f"{text} is not a duration")
    try:
        duration = timedelta(seconds=seconds)
    except OverflowError:
        raise DurationError(f"{text} is too long for a duration") from None
    # Compare the timedelta, not the float: 1e-7 s rounds to a zero duration.
    if duration <= timedelta(0):
        raise DurationError(f"must be a positive duration, got {text}")
    return duration


def duration_parser(minimum: timedelta | None = None) -> Parser:
    """A parser of `45s`, `1h30m`, `500ms` or a number of seconds; must be positive."""

    def parse(node: Node) -> timedelta:
        tag = tag_of(node)
        text = _scalar(node, "a duration such as 45s, 5m, 1h30m or 2d", STR, INT, FLOAT).strip()
        try:
            if tag in (INT, FLOAT):
                try:
                    seconds = float(text.replace("_", ""))
                except ValueError:  # an explicit `!!float abc`
                    raise Invalid(f"{text!r} is not a number of seconds") from None
                duration = _positive(seconds, text)
            else:
                duration = parse_duration_text(text, allow_number=False)
        except DurationError as exc:
            raise Invalid(
                str(exc), offset=exc.offset + _quote_width(node) if exc.offset else 0
            ) from None
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


def _quote_width(node: Node) -> int:
    """1 for a quoted scalar, whose text starts one column after the node."""
    return 1 if getattr(node, "style", None) in ('"', "'") else 0


def cron_parser(job_name: str) -> Callable[[Node], CronExpr]:
    def parse(node: Node) -> CronExpr:
        text = _scalar(node, "a cron expression such as '0 2 * * *'", STR)
        try:
            return parse_cron(text, hash_key=job_name)
        except CronError as exc:
            raise Invalid(exc.message, offset=exc.offset + _quote_width(node)) from None

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
    if tag in (INT, FLOAT):
        try:
            number: float = _to_int(text) if tag == INT else float(text.replace("_", ""))
        except ValueError:  # an explicit `!!int abc` or `!!float abc`
            raise Invalid(f"{text!r} is not a number", node) from None
        if not math.isfinite(number):  # .inf, .nan, and 1e400 which overflows to inf
            raise Invalid(f"{text} cannot be sent as JSON", node)
        return number
    if tag == BOOL:
        if text.lower() not in ("true", "false"):
            raise Invalid(f"expected true or false, got {text!r}", node)
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
