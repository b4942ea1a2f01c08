"""What ePROM checks of a form order before it looks the form up in its catalog, in its order: the schema,
the national ids, the dates. The fake ePROM checks these first; the proxy checks the same before it links
an order to one ePROM already has, since ePROM then never sees the request (docs/DESIGN.md)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import schemas
from .messages import ProtocolError
from .national_id import require_orderable
from .timefmt import iso, parse_instant


@dataclass(frozen=True)
class OrderBasics:
    national_id: str
    on_behalf_of: str | None
    expiry: datetime


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
