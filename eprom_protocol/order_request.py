"""What ePROM checks of a form order, in its order, as far as the checks need no catalog: the schema, the
national ids, the dates (check_order_basics, before the form is looked up), then what the order asks for
(check_order_wishes: signing against the distribution rule and onBehalfOf) and its metadata (parse_metadata).
The fake ePROM makes these checks with its catalog around them; the proxy makes the same before it links an
order to one ePROM already has, or answers with the zero id, since ePROM then never sees the request
(docs/DESIGN.md)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from . import json_text, messages, schemas
from .enums import DistributionRule
from .messages import ProtocolError
from .national_id import require_orderable
from .timefmt import iso, parse_instant


def about_someone_else(national_id: object, on_behalf_of: str | None) -> str | None:
    """The person the form is about when that is not the recipient; None when the order is about the
    recipient, also when onBehalfOfNationalId names the recipient (docs/DESIGN.md, "who may share an ePROM
    order"): then nobody orders on behalf of someone else."""
    return on_behalf_of if on_behalf_of != national_id else None


@dataclass(frozen=True)
class OrderBasics:
    national_id: str
    on_behalf_of: str | None
    expiry: datetime

    @property
    def about_someone_else(self) -> str | None:
        return about_someone_else(self.national_id, self.on_behalf_of)


def check_order_basics(body: dict[str, Any], now: datetime) -> OrderBasics:
    """Raise ProtocolError(400) with the documented text for the first thing wrong, else the parsed values."""
    schemas.validate("formorder-request", body)
    national_id = require_orderable(body["nationalId"]).value
    on_behalf_of = body.get("onBehalfOfNationalId")
    if on_behalf_of is not None:  # present, even empty: it must be a national id
        on_behalf_of = require_orderable(on_behalf_of, "onBehalfOfNationalId").value
    expiry = parse_instant(body["expiryDate"], "expiryDate")
    if body.get("reminderDate") is not None:  # ignored, as by ePROM, but it must still be a date
        parse_instant(body["reminderDate"], "reminderDate")
    if expiry <= now:
        raise ProtocolError(f"expiryDate: {body['expiryDate']!r} is not in the future (it is now {iso(now)})")
    return OrderBasics(national_id, on_behalf_of, expiry)


class OrderWishes(NamedTuple):
    rule: DistributionRule
    must_be_signed: bool  # the form's demand or the order's


def check_order_wishes(body: dict[str, Any], about: str | None,
                       form_must_be_signed: bool = False) -> OrderWishes:
    """Raise ProtocolError(400) with ePROM's text when the order asks for signing that its distribution rule or
    its being `about` someone else (OrderBasics.about_someone_else: an onBehalfOf naming the recipient is not)
    rules out (the form's own demand, if known, counts too); else its rule and whether it is signed."""
    rule = (DistributionRule.parse(body["distributionRule"]) if body.get("distributionRule") is not None
            else DistributionRule.Basic)
    must_be_signed = form_must_be_signed or body.get("mustBeSigned") is True
    if must_be_signed and rule is DistributionRule.NoDistribution:
        raise ProtocolError(messages.SIGNING_WITH_NO_DISTRIBUTION)
    if must_be_signed and about is not None:
        raise ProtocolError(messages.SIGNING_ON_BEHALF)
    return OrderWishes(rule, must_be_signed)


_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def parse_metadata(text: str | None) -> dict[str, Any] | None:
    """The order's metadata: a string holding a JSON object, or absent. Else ProtocolError(400) with ePROM's
    text."""
    if text is None:
        return None
    try:
        value = json_text.loads(text)
    except ValueError as err:  # bad syntax, NaN/Infinity, too deep: what JSON does not allow
        raise ProtocolError(messages.invalid_metadata(str(err))) from None
    if not isinstance(value, dict):
        raise ProtocolError(messages.invalid_metadata(
            f"expected a JSON object such as {{\"age\": 76}}, got {_JSON_KINDS.get(type(value), 'something else')}"))
    return value
