"""The ePROM enums, each accepting its name or its number on the wire (SPEC §1)."""
from __future__ import annotations

from enum import IntEnum

from .json_text import shown


class WireEnum(IntEnum):
    """An IntEnum that parses a name (any case) or a number (int or numeric string)."""

    @classmethod
    def parse(cls, value: object) -> "WireEnum":
        if isinstance(value, bool):
            raise ValueError(cls._expected(value))
        if isinstance(value, int):
            try:
                return cls(value)
            except ValueError:
                raise ValueError(cls._expected(value)) from None
        if isinstance(value, str):
            text = value.strip()
            if text.isascii() and text.removeprefix("-").isdigit():  # not "²" (isdigit) nor "--1"
                return cls.parse(int(text))
            for member in cls:
                if member.wire_name.lower() == text.lower():
                    return member
        raise ValueError(cls._expected(value))

    @property
    def wire_name(self) -> str:
        """The member's name on the wire: "None" for members spelt None_ in Python."""
        return "None" if self.name == "None_" else self.name

    @classmethod
    def is_valid(cls, value: object) -> bool:
        try:
            cls.parse(value)
        except ValueError:
            return False
        return True

    @classmethod
    def _expected(cls, value: object) -> str:
        allowed = ", ".join(f"{m.value} {m.wire_name}" for m in cls)
        return f"{shown(value)} is not a valid {cls.__name__}; expected one of: {allowed}"

    @classmethod
    def wire_values(cls) -> list:
        """Every accepted JSON value: names and numbers (used by the JSON Schemas)."""
        return [m.wire_name for m in cls] + [m.value for m in cls]


class DistributionRule(WireEnum):
    Basic = 0
    AllowUnsecure = 1
    NoDistribution = 2
    BasicOrPaper = 3
    AllowUnsecureOrPaper = 4
    PaperOnly = 5
    HelsenorgeOnly = 6
    DigitalMailboxOnly = 7
    UnsecureOnly = 8


class NotificationChannel(WireEnum):
    # "None" is a keyword, so the member is spelt None_; its wire name is "None".
    None_ = 0
    Helsenorge = 1
    DigitalMailbox = 2
    Unsecure = 3
    PhysicalMailbox = 4


class FormOrderStatus(WireEnum):
    Completed = 0
    Expired = 1
    Ordered = 2
    Error = 3
    PhysicalMailReturned = 4
    DigipostDelivered = 5


class FormOrderStatusErrorCode(WireEnum):
    None_ = 0
    PatientUnreachable = 1
    SikkerDigitalPostError = 2


class SentStatus(WireEnum):
    Sent = 0
    Error = 1


class FormOrderEventLogType(WireEnum):
    FormOpened = 0
    QuestionAccessed = 1
    SigningStarted = 2
    SigningCancelled = 3
    SigningError = 4
    SigningCompleted = 5
    FormDelivered = 6


class FilledOutByActType(WireEnum):
    Ukjent = 0
    SegSelv = 1
    Foreldrerepresentasjon = 2
    Fullmakt = 3


#: Statuses that travel in an order-status callback; the others travel in a returned form.
STATUS_CALLBACK_STATUSES = frozenset(
    {FormOrderStatus.Ordered, FormOrderStatus.Error, FormOrderStatus.PhysicalMailReturned,
     FormOrderStatus.DigipostDelivered}
)
RETURNED_FORM_STATUSES = frozenset({FormOrderStatus.Completed, FormOrderStatus.Expired})
