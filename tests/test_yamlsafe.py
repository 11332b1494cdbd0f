"""The one-pass composer over libyaml builds the same tree as ruamel.yaml's own composer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from scheduler.yamlsafe import _compose_checked, _compose_fast

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[1]
GOOD = [*sorted((DATA / "good").glob("*.yaml")), REPO / "schedules.yaml"]


def shape(node: Node, seen: dict[int, int] | None = None) -> Any:
    """Tag, value, position and alias sharing of a tree, as plain data."""
    seen = {} if seen is None else seen
    if id(node) in seen:
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)
    where = (node.start_mark.line, node.start_mark.column, str(node.tag))
    if isinstance(node, MappingNode):
        return (*where, [(shape(k, seen), shape(v, seen)) for k, v in node.value])
    if isinstance(node, SequenceNode):
        return (*where, [shape(item, seen) for item in node.value])
    return (*where, node.value, node.end_mark.line, node.end_mark.column)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_fast_composer_matches_ruamel_on_valid_files(path: Path) -> None:
    text = path.read_text()
    fast = _compose_fast(text)
    assert fast is not None
    assert shape(fast) == shape(_compose_checked(str(path), text))  # type: ignore[arg-type]


def test_fast_composer_keeps_tags_merges_and_shared_aliases() -> None:
    text = (
        "base: &b {queue: q, n: 1, f: 1.5, on: true, none: null, when: 2026-01-01}\n"
        "x: {<<: *b, tagged: !!str 12, quoted: '12'}\n"
        "items: [*b, *b]\n"
    )
    fast = _compose_fast(text)
    assert fast is not None
    assert shape(fast) == shape(_compose_checked("t", text))  # type: ignore[arg-type]
    items = fast.value[2][1].value
    assert items[0] is items[1] is fast.value[0][1]


PLAIN = [
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "Yes",
    "NO",
    "true",
    "False",
    "TRUE",
    "null",
    "Null",
    "NULL",
    "~",
    ".inf",
    "-.inf",
    ".nan",
    ".NaN",
    "1",
    "-1",
    "+1",
    "0x1f",
    "0o17",
    "017",
    "1_000",
    "1.5",
    "1e3",
    "-2.5e-3",
    "2026-01-01",
    "2026-01-01T02:00:00Z",
    "12:30",
    "=",
    "idle-000001",
    "jobs.demo.noop",
    "tfoo",
    "nfoo",
    "Tbar",
    "Fbar",
    "~x",
    ".x",
    "-x",
    "+x",
    "9x",
]


def test_fast_composer_types_every_plain_scalar_like_ruamel() -> None:
    # Most plain scalars are typed without the resolver (by their first character): the
    # shortcut must agree with ruamel's composer on every kind of start.
    text = "".join(f"k{i}: {word}\n{word}: k{i}\n" for i, word in enumerate(PLAIN))
    fast = _compose_fast(text)
    assert fast is not None
    assert shape(fast) == shape(_compose_checked("t", text))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "a: [1, 2\n",  # syntax error
        "a: *nowhere\n",  # undefined alias
        "a: 1\n---\nb: 2\n",  # two documents
        "%YAML 1.1\n---\na: yes\n",  # 1.1 resolves plain scalars differently
        "a: &x [*x]\n",  # recursive alias
        "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n",
        "a: " + "[" * 60 + "]" * 60 + "\n",  # too deep
    ],
)
def test_fast_composer_leaves_every_irregular_document_to_the_checked_path(text: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 (any exception sends it to _compose_checked)
        _compose_fast(text)
