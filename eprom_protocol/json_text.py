"""Reading JSON text strictly: what RFC 8259 allows and a double can hold, nothing more.

Why: Python's json reads NaN, Infinity and numbers such as 1e999 (as infinity) and writes them back
as NaN and Infinity, which are not JSON. Taken in, such a value would be passed on to registries that
cannot parse it, and SQLite's JSON functions (the proxy builds a linked registry's replay with them)
refuse it, so every later order linking to it would fail. Every JSON text the servers take in from
outside (request bodies, answers, order metadata) is read here instead."""
from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

NOT_JSON_CONSTANT = "{} is not a JSON value"
TOO_LARGE = "a number too large for JSON (beyond a double)"
#: How deep arrays and objects may nest: what .NET's JSON readers allow by default (ePROM is a .NET service), far
#: more than any message of the protocol needs, and far below where Python's own recursion gives out (a body
#: nested 970 deep was taken in, then failed as a 500 when the proxy wrote it on to ePROM).
MAX_DEPTH = 64
TOO_DEEP = f"nested too deeply (at most {MAX_DEPTH} levels)"
LONE_SURROGATE = "half of a character (a lone surrogate, U+D800 to U+DFFF), which no Unicode text holds"
#: Where a lone surrogate can come from: a \uD800-\uDFFF escape, or one written as it is (json.loads decodes
#: UTF-8 bytes with "surrogatepass", so ED A0-BF .. reads as one; a str may hold one already).
_SURROGATE = re.compile("\\\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
TOO_MANY_DIGITS = "a number with more than {} digits"


def _refuse_constant(name: str) -> Any:
    raise ValueError(NOT_JSON_CONSTANT.format(name))


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(TOO_LARGE)  # the number's text is not echoed: it may be someone's data
    return value


def _integer(text: str) -> int:
    limit = sys.get_int_max_str_digits()
    if limit and len(text.lstrip("-")) > limit:  # int() would refuse with advice meant for programmers
        raise ValueError(TOO_MANY_DIGITS.format(limit))
    return int(text)


def shown(value: Any) -> str:
    """A value the client sent, as an error message quotes it: a string in quotes ('Fax'), anything else as
    JSON spells it (null, true), which is what the client wrote, not Python's None or True."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):  # not a JSON value (bytes, NaN): Python's spelling
        return repr(value)


def loads(text: str | bytes) -> Any:
    """The JSON value of `text` (bytes in UTF-8, -16 or -32, as json.loads detects), or ValueError
    with a short sentence saying what is wrong: where the syntax breaks, NaN or Infinity, a number
    beyond a double, nesting deeper than the parser goes, bytes that are no Unicode text."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite,
                           parse_int=_integer)
    except json.JSONDecodeError as err:
        raise ValueError(str(err)) from None  # "Expecting value: line 1 column 1 (char 0)"
    except UnicodeDecodeError:
        raise ValueError("the bytes are not UTF-8 text") from None
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    _check_shape(text, value)
    return value


def _check_shape(text: str | bytes, value: Any) -> None:
    """What json.loads takes but no client of the protocol sends, and Python cannot write on or store: nesting
    beyond MAX_DEPTH, and lone surrogates (SQLite and UTF-8 refuse them; .NET's readers refuse both). Most
    texts are judged by their characters alone; only the rest are walked."""
    if isinstance(text, (bytes, bytearray)):
        if json.detect_encoding(text) != "utf-8":  # UTF-16 or -32: its bytes say nothing here, so walk it all
            openers, surrogates = MAX_DEPTH + 1, True
        else:
            openers = text.count(b"[") + text.count(b"{")
            surrogates = _SURROGATE_BYTES.search(text) is not None
    else:
        openers = text.count("[") + text.count("{")
        surrogates = _SURROGATE.search(text) is not None
    if openers <= MAX_DEPTH and not surrogates:
        return
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if surrogates:
                _require_whole_characters(item)
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth == MAX_DEPTH:
            raise ValueError(TOO_DEEP)
        if isinstance(item, dict):
            if surrogates:
                for key in item:
                    _require_whole_characters(key)
            item = item.values()
        pending.extend((child, depth + 1) for child in item)


def _require_whole_characters(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(LONE_SURROGATE) from None
