"""The linking rules of SPEC §3 as pure functions: which orders are active, and whether a registry's
order makes a new ePROM order, links to an existing one, or makes none. No Flask, no SQL, no clock."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Iterable

from eprom_protocol import json_text
from eprom_protocol.enums import DistributionRule, FormOrderStatus
from eprom_protocol.messages import ProtocolError, invalid_metadata
from eprom_protocol.order_request import OrderBasics, check_order_basics, check_order_wishes, parse_metadata
from eprom_protocol.timefmt import parse_instant

RELEVANT_DATE = "RELEVANT_DATE"
CREATE_NEW_ORDER = "CREATE_NEW_ORDER"
DIRECTIVES = (RELEVANT_DATE, CREATE_NEW_ORDER)

DEFAULT_LIFETIME = timedelta(days=365)

#: ePROM order states that keep an order active while it is inside its lifetime.
PENDING = "Pending"
ERROR = "Error"


def sets_back(state: str, status: FormOrderStatus) -> bool:
    """Whether an update ePROM sends late would set an order back, so that it is passed on to no registry
    (recorded, so a resend of it is known): any status after the answer or the expiry, anything but an answer
    after an Error (an order that failed stays failed: not active; an Expired would make it active again),
    Ordered after any other status (it is always the first), and Expired after Completed. An answer after an
    expiry or an Error is passed on: the answer is what the registries ordered."""
    if status is FormOrderStatus.Completed:
        return state == FormOrderStatus.Completed.name
    if status is FormOrderStatus.Expired:
        return state in (FormOrderStatus.Completed.name, FormOrderStatus.Expired.name, ERROR)
    if state in (FormOrderStatus.Completed.name, FormOrderStatus.Expired.name, ERROR):
        return True
    return status is FormOrderStatus.Ordered and state != PENDING


@dataclass(frozen=True)
class Directives:
    create_new: bool | None = None  # None: the directive was not given
    relevant_date: datetime | None = None


@dataclass(frozen=True)
class Candidate:
    """An ePROM order for the same patient and form, as the linking rules see it."""

    key: str
    ordered_at: datetime
    state: str
    linked: frozenset[str]
    seq: int = 0  # creation order: breaks ties between orders placed at the same simulated instant


class Outcome(Enum):
    NEW_ORDER = "new ePROM order"
    LINK = "link to an existing order"
    NO_ORDER = "no order (zero id)"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    rule: int  # the row of SPEC §3's table that decided
    link_to: str | None = None


#: A testMode order is outside the table: ePROM answers it but calls nobody back and returns no answer (SPEC
#: §1, §2), so it always goes to ePROM as an order of its own (rule 0) and no order ever links to it.
TEST_ORDER = Decision(Outcome.NEW_ORDER, rule=0)


@dataclass(frozen=True)
class Intake:
    """An order that passed the checks every order gets before a linking decision."""

    basics: OrderBasics
    directives: Directives
    forwarded_metadata: str | None  # the metadata ePROM gets if the order goes to it: without the directives


def take_in(body: dict, now: datetime) -> Intake:
    """The checks ePROX makes of every order before it decides anything: ePROM's own that need no catalog,
    and the linking directives in its metadata. Raises ProtocolError for the first that fails."""
    basics = check_order_basics(body, now)
    directives, forwarded = split_metadata(body.get("metadata"))
    return Intake(basics, directives, forwarded)


def check_in_place_of_eprom(body: dict, about_someone_else: str | None) -> DistributionRule:
    """ePROM's checks left for an order ePROM never sees (it links, or makes no order), so that a registry
    gets the same refusal whoever ordered first: signing and distribution, and the whole metadata. Returns
    the order's distribution rule."""
    rule = check_order_wishes(body, about_someone_else).rule
    parse_metadata(body.get("metadata"))
    return rule


def split_metadata(metadata: object) -> tuple[Directives, str | None]:
    """Directives from the metadata string, and the metadata to send on to ePROM without them.

    Metadata that is not a JSON object passes through untouched (ePROM judges it); metadata that is
    not JSON at all gets ePROM's own text, so registries see the same error either way."""
    if metadata is None or metadata == "":
        return Directives(), metadata  # type: ignore[return-value]
    if not isinstance(metadata, str):
        raise ProtocolError("metadata: must be a string holding JSON, e.g. \"{\\\"age\\\": 76}\"")
    try:
        parsed = json_text.loads(metadata)
    except ValueError as err:  # as the fake ePROM reads it: the same text either way
        raise ProtocolError(invalid_metadata(str(err))) from None
    if not isinstance(parsed, dict) or not any(k in parsed for k in DIRECTIVES):
        return Directives(), metadata
    directives = Directives(
        create_new=_parse_create_new(parsed.get(CREATE_NEW_ORDER)),
        relevant_date=(parse_instant(parsed[RELEVANT_DATE], f"metadata.{RELEVANT_DATE}")
                       if parsed.get(RELEVANT_DATE) is not None else None),
    )
    rest = {k: v for k, v in parsed.items() if k not in DIRECTIVES}
    return directives, (json.dumps(rest, ensure_ascii=False) if rest else None)


def _parse_create_new(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ProtocolError(f"metadata.{CREATE_NEW_ORDER}: must be true or false, not {value!r}")


def is_active(candidate: Candidate, now: datetime, lifetime: timedelta = DEFAULT_LIFETIME) -> bool:
    """Inside its lifetime and not in Error (pending, ordered, expired and completed orders count)."""
    return candidate.state != ERROR and now - candidate.ordered_at < lifetime


def decide(registry: str, directives: Directives, candidates: Iterable[Candidate], now: datetime,
           lifetime: timedelta = DEFAULT_LIFETIME) -> Decision:
    """SPEC §3's table, first row that holds."""
    if directives.create_new is True:
        return Decision(Outcome.NEW_ORDER, rule=1)
    active = [c for c in candidates if is_active(c, now, lifetime)]
    if not active:
        return Decision(Outcome.NEW_ORDER, rule=2)
    linkable = [
        c for c in active
        if registry not in c.linked
        and (directives.relevant_date is None or c.ordered_at >= directives.relevant_date)
    ]
    if linkable:
        newest = max(linkable, key=lambda c: (c.ordered_at, c.seq))
        return Decision(Outcome.LINK, rule=3, link_to=newest.key)
    if directives.create_new is False:
        return Decision(Outcome.NO_ORDER, rule=4)
    return Decision(Outcome.NEW_ORDER, rule=5)
