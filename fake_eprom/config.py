"""What a fake ePROM is configured with: its ordering systems, its forms, its population mode and how
long an order takes to reach the patient."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from eprom_protocol.messages import SIGNED_DOCUMENT_DAYS

from .forms import Form, default_catalog

CHANNEL_FORMATS = ("number", "name")
POPULATIONS = ("open", "strict")
DEFAULT_LOGIN_URL = "https://proms2.hemit.org/Proms"  # the guide's patient login page


@dataclass
class OrderingSystem:
    name: str
    api_key: str
    api_base_url: str  # callbacks go to {api_base_url}/api/PromsFormOrder
    research: bool = False  # patients reserved against research are not reached on Helsenorge
    channel_format: str = "number"  # notificationChannel in callbacks: "number" or "name"

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an ordering system needs a name")
        if not self.api_key:
            raise ValueError(f"ordering system {self.name!r} needs an api_key")
        if self.channel_format not in CHANNEL_FORMATS:
            raise ValueError(f"ordering system {self.name!r}: channel_format must be one of "
                             f"{', '.join(CHANNEL_FORMATS)}, not {self.channel_format!r}")

    @property
    def callback_url(self) -> str:
        return self.api_base_url.rstrip("/") + "/api/PromsFormOrder"

    @property
    def message_callback_url(self) -> str:
        return self.api_base_url.rstrip("/") + "/api/MessageToCitizen"


@dataclass
class EpromConfig:
    ordering_systems: list[OrderingSystem]
    forms: list[Form] | None = None  # None -> default catalog
    population: str = "open"  # "open": any valid id is a default patient; "strict": unknown ids get the zero id
    status_delay: timedelta = timedelta(0)  # from the order to its status callback
    login_url: str = DEFAULT_LOGIN_URL  # loginUrl in order responses
    signed_document_days: int = SIGNED_DOCUMENT_DAYS  # a signed PDF is served this long after signing, then 404
    catalog: list[Form] = field(init=False, repr=False)  # forms, or the default catalog

    def __post_init__(self) -> None:
        if self.population not in POPULATIONS:
            raise ValueError(f"population must be one of {', '.join(POPULATIONS)}, not {self.population!r}")
        if self.status_delay < timedelta(0):
            raise ValueError("status_delay must not be negative")
        for attr in ("name", "api_key"):
            values = [getattr(s, attr) for s in self.ordering_systems]
            if len(set(values)) != len(values):
                raise ValueError(f"ordering systems must have distinct {attr}s")
        self.catalog = list(self.forms) if self.forms is not None else default_catalog()
        ids = [f.id for f in self.catalog]
        if len(set(ids)) != len(ids):
            raise ValueError("form ids must be distinct")
        names = {s.name for s in self.ordering_systems}
        for form in self.catalog:
            if form.owner is not None and form.owner not in names:
                raise ValueError(f"form {form.name!r}: its owner {form.owner!r} is not an ordering system "
                                 f"(there are: {', '.join(sorted(names))})")
        if self.signed_document_days < SIGNED_DOCUMENT_DAYS:
            raise ValueError(f"signed documents must stay at least {SIGNED_DOCUMENT_DAYS} days (the guide's minimum)")

    def system_by_key(self, api_key: str) -> OrderingSystem | None:
        return next((s for s in self.ordering_systems if s.api_key == api_key), None)

    def system_by_name(self, name: str) -> OrderingSystem | None:
        return next((s for s in self.ordering_systems if s.name == name), None)

    def catalog_for(self, system: OrderingSystem) -> dict[str, Form]:
        """The forms an ordering system may order, by id: for now every system sees the whole catalog."""
        return {form.id: form for form in self.catalog}

    def form(self, form_id: str) -> Form | None:
        return next((f for f in self.catalog if f.id == form_id.lower()), None)
