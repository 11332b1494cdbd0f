"""Reading untrusted YAML into a node tree with positions, refusing anything dangerous.

We compose (never construct) with ruamel.yaml: composing keeps the position of every key and
value, and builds no Python object, so a tag such as `!!python/object` cannot run code. Plain
loaders silently keep the last of two duplicate keys and expand aliases without limit; here
both are the caller's decision (see `mapping_entries`) or refused before expansion (`_scan`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from scheduler.errors import Problem, ScheduleError

MAX_BYTES = 1 << 20
MAX_NODES = 10_000
MAX_DEPTH = 50

TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (TAG + t for t in ("str", "int", "float", "bool", "null"))
TIMESTAMP, SEQ, MAP, MERGE = (TAG + t for t in ("timestamp", "seq", "map", "merge"))
_ALLOWED_TAGS = frozenset({STR, INT, FLOAT, BOOL, NULL, TIMESTAMP, SEQ, MAP, MERGE})


@dataclass(frozen=True, slots=True)
class Entry:
    """One key of a mapping, after merge keys are applied."""

    key: str
    key_node: Node
    value: Node


def position(node: Node) -> tuple[int, int]:
    """The 1-based (line, column) where a node starts."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def tag_of(node: Node) -> str:
    return str(node.tag)


def read_document(path: Path) -> Node:
    """The root node of a schedule file; raises ScheduleError for a problem of the whole file."""
    name = str(path)
    try:
        size = os.stat(path).st_size
        if size > MAX_BYTES:
            # Refused unread: nothing that large is a schedule, and reading it costs memory.
            raise _file_error(name, f"file is {size:,} bytes, over the 1 MiB limit for a schedule")
        # Bounded even so: a device or pipe (/dev/zero, /dev/stdin) reports size 0, and a file
        # may grow between stat and read.
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise _file_error(name, "file not found") from None
    except IsADirectoryError:
        raise _file_error(name, "is a directory, not a schedule file") from None
    except PermissionError:
        raise _file_error(name, "permission denied") from None
    return parse_document(name, data)


def parse_document(name: str, data: bytes) -> Node:
    """Compose YAML bytes into a node tree after checking encoding, size and expansion."""
    if len(data) > MAX_BYTES:
        raise _file_error(name, "file is over the 1 MiB limit for a schedule")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        # Editors count characters, not bytes: decode the (valid) start of the line.
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        before = data[line_start : exc.start].decode("utf-8")
        col = len(before.removeprefix("\ufeff") if line == 1 else before) + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise ScheduleError(
            [Problem(name, line, col, "", f"file is not valid UTF-8 (byte 0x{bad})")]
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise _file_error(name, "file is empty (a schedule needs at least `jobs: {}`)")
    yaml = YAML(typ="safe", pure=True)
    try:
        _scan(name, yaml, text)
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ScheduleError([Problem(name, line, col, "", f"YAML syntax: {message}")]) from None
    except ReaderError as exc:
        # A character YAML does not allow (NUL, most control characters): `position` is its
        # index in the text.
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = exc.character if isinstance(exc.character, int) else 0
        raise ScheduleError(
            [Problem(name, line, col, "", f"YAML syntax: character #x{char:04x} is not allowed")]
        ) from None
    except YAMLError as exc:
        raise _file_error(name, f"YAML syntax: {exc}") from None
    if root is None:
        raise _file_error(name, "file is empty (a schedule needs at least `jobs: {}`)")
    node: Node = root
    return node


def _scan(name: str, yaml: YAML, text: str) -> None:
    """Count nodes as if every alias were expanded, from parser events, before composing.

    A billion-laughs file is a few hundred bytes whose expansion has 10^9 nodes; counting
    each anchor's size once and adding it at each alias finds it in microseconds.
    """
    count = 0
    sizes: dict[str, int] = {}
    open_anchors: list[tuple[str | None, int]] = []
    for event in yaml.parse(text):
        if isinstance(event, AliasEvent):
            anchor = str(event.anchor)
            if any(a == anchor for a, _ in open_anchors):
                raise _at(name, event, f"alias *{anchor} refers to itself (recursive alias)")
            count += sizes.get(anchor, 1)
            if count > MAX_NODES:
                raise _at(
                    name,
                    event,
                    f"alias *{anchor} expands the document past {MAX_NODES:,} nodes "
                    "(alias expansion bomb?)",
                )
        elif isinstance(event, ScalarEvent):
            count += 1
            if event.anchor:
                sizes[str(event.anchor)] = 1
        elif isinstance(event, CollectionStartEvent):
            open_anchors.append((str(event.anchor) if event.anchor else None, count))
            count += 1
            if len(open_anchors) > MAX_DEPTH:
                raise _at(name, event, f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, CollectionEndEvent):
            closed, start = open_anchors.pop()
            if closed:
                sizes[closed] = count - start
        if count > MAX_NODES:
            raise _at(name, event, f"the document has more than {MAX_NODES:,} nodes")


def _at(name: str, event: object, message: str) -> ScheduleError:
    mark = event.start_mark  # type: ignore[attr-defined]
    return ScheduleError([Problem(name, mark.line + 1, mark.column + 1, "", message)])


def _file_error(name: str, message: str) -> ScheduleError:
    return ScheduleError([Problem(name, 0, 0, "", message)])


def mapping_entries(node: MappingNode) -> Iterator[tuple[Entry, bool]]:
    """Yield each key of a mapping with merge keys applied, flagged True if explicit.

    Explicit keys come first, in file order, duplicates included (the caller reports them);
    merged keys follow, only those not already present, the first merged mapping winning.
    """
    merged: list[MappingNode] = []
    explicit: set[str] = set()
    for key_node, value in node.value:
        if tag_of(key_node) == MERGE:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            merged.extend(s for s in sources if isinstance(s, MappingNode))
            continue
        key = key_node.value if isinstance(key_node, ScalarNode) else ""
        explicit.add(key)
        yield Entry(str(key), key_node, value), True
    seen = set(explicit)
    for source in merged:
        for entry, _ in mapping_entries(source):
            if entry.key not in seen:
                seen.add(entry.key)
                yield entry, False


def bad_merge_sources(node: MappingNode) -> Iterator[Node]:
    """Values of merge keys that are not mappings (or sequences of mappings)."""
    for key_node, value in node.value:
        if tag_of(key_node) != MERGE:
            continue
        sources = value.value if isinstance(value, SequenceNode) else [value]
        yield from (s for s in sources if not isinstance(s, MappingNode))


def disallowed_tag(node: Node) -> str | None:
    """The tag of a node if it is not a plain YAML type (e.g. `!!python/object:os.system`)."""
    tag = tag_of(node)
    if tag in _ALLOWED_TAGS:
        return None
    return "!!" + tag.removeprefix(TAG) if tag.startswith(TAG) else tag
