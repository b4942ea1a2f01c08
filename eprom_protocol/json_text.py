"""Reading JSON text strictly: what RFC 8259 allows and a double can hold, nothing more.

Why: Python's json reads NaN, Infinity and numbers such as 1e999 (as infinity) and writes them back
as NaN and Infinity, which are not JSON. Taken in, such a value would be passed on to registries that
cannot parse it, and SQLite's JSON functions (the proxy builds a linked registry's replay with them)
refuse it, so every later order linking to it would fail. Every JSON text the servers take in from
outside (request bodies, answers, order metadata) is read here instead."""
from __future__ import annotations

import json
import math
import sys
from typing import Any

NOT_JSON_CONSTANT = "{} is not a JSON value"
TOO_LARGE = "a number too large for JSON (beyond a double)"
TOO_DEEP = "nested too deeply"
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
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite,
                          parse_int=_integer)
    except json.JSONDecodeError as err:
        raise ValueError(str(err)) from None  # "Expecting value: line 1 column 1 (char 0)"
    except UnicodeDecodeError:
        raise ValueError("the bytes are not UTF-8 text") from None
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
