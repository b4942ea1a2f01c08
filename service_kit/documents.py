"""Reading YAML and JSON files people write by hand: a key given twice in one mapping is an error. YAML and
json would silently keep the last one, so a second `expect:` or `database:` further down a long file would
win unnoticed (a scenario's first expectations dropped, and the run judged without them). YAML gives only
what JSON has: an unquoted date stays the text written, and a tag making bytes, a set or a date is refused."""
from __future__ import annotations

import re
from typing import Any

import yaml


class DuplicateKey(ValueError):
    def __init__(self, key: Any, line: int | None = None):
        super().__init__(f"{f'line {line}: ' if line else ''}`{key}` is given twice (only one may be)")


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping, and giving only values JSON has: every
    reader passes them on as JSON (the proxy's settings crashed on `database: 2024-01-01`), and a user expects
    plain text to stay text, as in YAML 1.2's core schema."""

    def construct_mapping(self, node, deep=False):
        """Keys written in this mapping are checked; a merge (`<<: *anchor`) is not one of them, and a key
        written here overrides a merged one, as YAML says."""
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:  # also 1 and true: equal in Python, one would silently replace the other
                    raise DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says what is wrong with it
                pass
        return super().construct_mapping(node, deep)

    def _refuse_tag(self, node):
        name = node.tag.rsplit(":", 1)[-1]
        advice = "write the value as text" if name in ("binary", "timestamp") else "write a list or a mapping"
        raise yaml.constructor.ConstructorError(
            None, None, f"the tag !!{name} is not allowed here; {advice}", node.start_mark)


UniqueKeyLoader.yaml_implicit_resolvers = {  # an unquoted date or timestamp stays the text written
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag in ("binary", "set", "omap", "pairs", "timestamp"):  # values JSON does not have
    UniqueKeyLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", UniqueKeyLoader._refuse_tag)


def unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: as UniqueKeyLoader, for JSON."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise DuplicateKey(key)
        data[key] = value
    return data


#: A part of PyYAML's problem text it quotes from the file (an alias, a tag, an anchor): a Python repr.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
#: What a quoted part shows of the file when it is only a character or a token's name ('@', '\t', '<scalar>').
_SYNTAX = re.compile(r"(['\"])(?:\\?.|\\x[0-9a-f]{2}|<[a-z ]+>)\1")


def yaml_error_text(err: yaml.YAMLError, *, quote_content: bool = True) -> str:
    """What is wrong with a YAML text, by line and column, in one line. Never the line itself, as PyYAML's own
    message quotes it: it may hold a key. With quote_content=False not even the words PyYAML quotes from it
    (`apiKey: *Sup3rSecret` is an undefined alias, `apiKey: !Sup3rSecret` a tag), only a lone character."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
    what = getattr(err, "problem", None) or getattr(err, "context", None) or str(err).splitlines()[0]
    if not quote_content:
        what = _QUOTED.sub(lambda m: m[0] if _SYNTAX.fullmatch(m[0]) else "(not shown)", what)
    return f"not valid YAML: {where}{what}"
