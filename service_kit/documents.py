"""Reading YAML and JSON files people write by hand: a key given twice in one mapping is an error. YAML and
json would silently keep the last one, so a second `expect:` or `database:` further down a long file would
win unnoticed (a scenario's first expectations dropped, and the run judged without them)."""
from __future__ import annotations

from typing import Any

import yaml


class DuplicateKey(ValueError):
    def __init__(self, key: Any, line: int | None = None):
        super().__init__(f"{f'line {line}: ' if line else ''}`{key}` is given twice (only one may be)")


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping."""

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


def unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: as UniqueKeyLoader, for JSON."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise DuplicateKey(key)
        data[key] = value
    return data


def yaml_error_text(err: yaml.YAMLError) -> str:
    """What is wrong with a YAML text, by line and column, in one line. Never the line itself, as PyYAML's own
    message quotes it: it may hold a key."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
    what = getattr(err, "problem", None) or getattr(err, "context", None) or str(err).splitlines()[0]
    return f"not valid YAML: {where}{what}"
