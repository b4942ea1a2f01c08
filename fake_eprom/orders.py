"""Form orders: the validation of POST /api/v2/formorder in ePROM's order (SPEC §1) and the state an
order goes through. No Flask, no I/O."""
from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eprom_protocol import messages, schemas
from eprom_protocol.enums import DistributionRule as Rule, FormOrderStatus, NotificationChannel as Channel
from eprom_protocol.messages import ProtocolError
from eprom_protocol.national_id import mask, require_orderable
from eprom_protocol.timefmt import iso, parse_instant

from .config import OrderingSystem
from .distribution import PAPER_RULES
from .forms import Form

#: The request's fields, echoed in the response in this order (SPEC §1).
INPUT_FIELDS = ("formId", "nationalId", "expiryDate", "reminderDate", "metadata", "dontStoreCompletedFormInPha",
                "distributionRule", "mustBeSigned", "signingText", "physicalAddress", "testMode",
                "onBehalfOfNationalId")
INPUT_DEFAULTS = {"dontStoreCompletedFormInPha": False, "distributionRule": int(Rule.Basic),
                  "mustBeSigned": False, "testMode": False}

PENDING = "Pending"  # the control API's word for an order whose status is not decided yet


@dataclass(frozen=True)
class OrderRequest:
    """A valid order request, with the defaults filled in."""

    form: Form
    national_id: str
    on_behalf_of: str | None
    expiry: datetime
    rule: Rule
    must_be_signed: bool  # the form's or the request's demand
    test_mode: bool
    metadata: Any
    echo: dict  # the input fields as the response repeats them

    def __repr__(self) -> str:
        return f"OrderRequest(form={self.form.id}, patient={mask(self.national_id)}, rule={self.rule.name})"


def validate_order_request(body: dict[str, Any], catalog: dict[str, Form], now: datetime) -> OrderRequest:
    """Check a request body in ePROM's order; raise ProtocolError(400) with the documented text."""
    schemas.validate("formorder-request", body)
    national_id = require_orderable(body["nationalId"]).value
    on_behalf_of = body.get("onBehalfOfNationalId")
    if on_behalf_of is not None:
        on_behalf_of = require_orderable(on_behalf_of, "onBehalfOfNationalId").value
    expiry = parse_instant(body["expiryDate"], "expiryDate")
    if expiry <= now:
        raise ProtocolError(f"expiryDate: {body['expiryDate']!r} is not in the future "
                            f"(the simulated clock says {iso(now)})")
    form_id = body["formId"]
    form = catalog.get(form_id.lower())
    if form is None:
        raise ProtocolError(messages.no_such_form(form_id))
    if not form.published:
        raise ProtocolError(messages.FORM_NOT_PUBLISHED)
    rule = Rule.parse(body["distributionRule"]) if body.get("distributionRule") is not None else Rule.Basic
    must_be_signed = form.must_be_signed or body.get("mustBeSigned") is True
    if must_be_signed and rule is Rule.NoDistribution:
        raise ProtocolError(messages.SIGNING_WITH_NO_DISTRIBUTION)
    if must_be_signed and on_behalf_of is not None:
        raise ProtocolError(messages.SIGNING_ON_BEHALF)
    if rule in PAPER_RULES and not form.paper_enabled:
        raise ProtocolError(messages.form_not_paper_enabled(form_id))
    metadata = _parse_metadata(body.get("metadata"))
    echo = {name: body.get(name) for name in INPUT_FIELDS}
    for name, default in INPUT_DEFAULTS.items():
        if echo[name] is None:
            echo[name] = default
    echo["distributionRule"] = int(rule)
    return OrderRequest(form=form, national_id=national_id, on_behalf_of=on_behalf_of, expiry=expiry, rule=rule,
                        must_be_signed=must_be_signed, test_mode=body.get("testMode") is True,
                        metadata=metadata, echo=echo)


_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _parse_metadata(text: str | None) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as err:  # JSONDecodeError and NaN/Infinity, which JSON does not have
        raise ProtocolError(messages.invalid_metadata(str(err))) from None
    except RecursionError:
        raise ProtocolError(messages.invalid_metadata("nested too deeply")) from None
    if not isinstance(value, dict):
        raise ProtocolError(messages.invalid_metadata(
            f"expected a JSON object such as {{\"age\": 76}}, got {_JSON_KINDS.get(type(value), 'something else')}"))
    return value


@dataclass(eq=False)
class Callback:
    """One callback to an ordering system, waiting for (re)delivery."""

    id: int
    kind: str  # "status" or "returnedForm"
    body: dict = field(repr=False)  # carries the apiKey and answers: keep it out of logs
    created_at: datetime
    attempts: int = 0


@dataclass(eq=False)
class Order:
    """An order ePROM holds. Mutated only under the service's lock."""

    id: str
    system: OrderingSystem
    request: OrderRequest
    ordered_at: datetime
    preferred: Channel
    single_use_code: str | None
    status: FormOrderStatus | None = None  # None: not decided yet (PENDING)
    channel: Channel | None = None  # the actual channel, once decided
    reached_at: datetime | None = None
    finished_at: datetime | None = None  # answered or expired
    outbox: deque[Callback] = field(default_factory=deque)
    planned: list = field(default_factory=list)  # scheduler jobs to cancel when the order finishes

    @property
    def status_name(self) -> str:
        return PENDING if self.status is None else self.status.name

    def summary(self) -> dict:
        """The order as GET /_sim/orders lists it."""
        return {
            "id": self.id,
            "orderingSystem": self.system.name,
            "formId": self.request.form.id,
            "nationalId": self.request.national_id,
            "status": self.status_name,
            "notificationChannel": None if self.channel is None else self.channel.wire_name,
            "orderedAt": iso(self.ordered_at),
            "expiryDate": iso(self.request.expiry),
            "distributionRule": self.request.rule.name,
            "testMode": self.request.test_mode,
        }

    def __repr__(self) -> str:
        return f"Order({self.id}, {self.request!r}, status={self.status_name})"
