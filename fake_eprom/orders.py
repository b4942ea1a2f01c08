"""Form orders: the validation of POST /api/v2/formorder in ePROM's order (SPEC §1) and the state an
order goes through. No Flask, no I/O."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eprom_protocol import messages
from eprom_protocol.enums import DistributionRule as Rule, FormOrderStatus, NotificationChannel as Channel
from eprom_protocol.messages import ProtocolError
from eprom_protocol.national_id import mask
from eprom_protocol.order_request import about_someone_else, check_order_basics, check_order_wishes, parse_metadata
from eprom_protocol.timefmt import iso

from .callbacks import event_log
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
    expiry: datetime | None  # None: a patient-initiated order, which does not expire
    rule: Rule
    must_be_signed: bool  # the form's or the request's demand
    test_mode: bool
    metadata: Any
    echo: dict  # the input fields as the response repeats them
    dont_store_in_pha: bool = False  # recorded and shown; there is no patient archive to keep it out of
    signing_text: str | None = None
    has_address: bool = False  # physicalAddress gives an address line and a postal code: paper can reach

    @property
    def about_someone_else(self) -> str | None:
        return about_someone_else(self.national_id, self.on_behalf_of)

    @classmethod
    def patient_initiated(cls, form: Form, national_id: str) -> "OrderRequest":
        return cls(form=form, national_id=national_id, on_behalf_of=None, expiry=None, rule=Rule.NoDistribution,
                   must_be_signed=form.must_be_signed, test_mode=False, metadata=None, echo={})

    def __repr__(self) -> str:
        return f"OrderRequest(form={self.form.id}, patient={mask(self.national_id)}, rule={self.rule.name})"


def validate_order_request(body: dict[str, Any], catalog: dict[str, Form], now: datetime) -> OrderRequest:
    """Check a request body in ePROM's order; raise ProtocolError(400) with the documented text."""
    basics = check_order_basics(body, now)
    national_id, on_behalf_of, expiry = basics.national_id, basics.on_behalf_of, basics.expiry
    form_id = body["formId"]
    form = catalog.get(form_id.lower())
    if form is None:
        raise ProtocolError(messages.no_such_form(form_id))
    if not form.published:
        raise ProtocolError(messages.FORM_NOT_PUBLISHED)
    rule, must_be_signed = check_order_wishes(body, basics.about_someone_else, form.must_be_signed)
    if rule in PAPER_RULES and not form.paper_enabled:
        raise ProtocolError(messages.form_not_paper_enabled(form_id))
    metadata = parse_metadata(body.get("metadata"))
    echo = {name: body.get(name) for name in INPUT_FIELDS}
    for name, default in INPUT_DEFAULTS.items():
        if echo[name] is None:
            echo[name] = default
    echo["distributionRule"] = int(rule)
    address = body.get("physicalAddress") or {}
    return OrderRequest(form=form, national_id=national_id, on_behalf_of=on_behalf_of, expiry=expiry, rule=rule,
                        must_be_signed=must_be_signed, test_mode=body.get("testMode") is True,
                        metadata=metadata, echo=echo, dont_store_in_pha=body.get("dontStoreCompletedFormInPha") is True,
                        signing_text=body.get("signingText"),
                        has_address=bool(address.get("addressLine1")) and bool(address.get("postalCode")))


@dataclass(eq=False)
class Callback:
    """One callback to an ordering system, waiting for (re)delivery."""

    id: int
    kind: str  # "status", "returnedForm" or "messageStatus"
    body: dict = field(repr=False)  # carries the apiKey and answers: keep it out of logs
    created_at: datetime
    url: str
    system_name: str
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
    planned: list = field(default_factory=list)  # scheduler jobs to cancel when the order finishes
    plan: Any = None  # a patient-initiated order's AnswerPlan
    events: list = field(default_factory=list)  # (event, questionId, at): what the patient did
    refused: list = field(default_factory=list)  # attempts to answer ePROM refused, as the control API shows them
    warnings: list | None = None
    filled_out_by: dict | None = None
    signed_form_id: str | None = None
    scanned_paper_id: str | None = None
    mail_returned_at: datetime | None = None

    @property
    def patient_initiated(self) -> bool:
        return self.request.expiry is None

    @property
    def status_name(self) -> str:
        return PENDING if self.status is None else self.status.name

    def summary(self) -> dict:
        """The order as GET /_sim/orders lists it (no answers: those went to the ordering system)."""
        request = self.request
        return {
            "id": self.id,
            "orderingSystem": self.system.name,
            "formId": request.form.id,
            "nationalId": request.national_id,
            "status": self.status_name,
            "notificationChannel": None if self.channel is None else self.channel.wire_name,
            "preferredChannel": self.preferred.wire_name,
            "orderedAt": iso(self.ordered_at),
            "expiryDate": None if request.expiry is None else iso(request.expiry),
            "distributionRule": None if self.patient_initiated else request.rule.name,
            "testMode": request.test_mode,
            "dontStoreCompletedFormInPha": request.dont_store_in_pha,
            "mustBeSigned": request.must_be_signed,
            "onBehalfOfNationalId": request.on_behalf_of,
            "isPatientInitiated": self.patient_initiated,
            "singleUseCode": self.single_use_code,
            "reachedAt": None if self.reached_at is None else iso(self.reached_at),
            "finishedAt": None if self.finished_at is None else iso(self.finished_at),
            "mailReturnedAt": None if self.mail_returned_at is None else iso(self.mail_returned_at),
            "signedFormId": self.signed_form_id,
            "scannedPaperId": self.scanned_paper_id,
            "formDataWarnings": None if self.warnings is None else [dict(w) for w in self.warnings],
            "filledOutBy": None if self.filled_out_by is None else dict(self.filled_out_by),
            "formOrderEventLog": event_log(self.events),
            "refusedAttempts": [dict(r) for r in self.refused],
        }

    def __repr__(self) -> str:
        return f"Order({self.id}, {self.request!r}, status={self.status_name})"
