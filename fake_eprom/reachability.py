"""Which channels reach a patient, from what ePROM knows of them (SPEC §1, "Reachability facts"). Pure.

- Helsenorge: age 16+ (or a representative, for a child), full consent, and not reserved against research
  when the ordering system is marked as research.
- Secure digital mailbox: has one, and age 18+.
- Unsecure (e-mail/SMS from the contact register): an e-mail address or a mobile number, age 13+, and
  digitally active: the contact data was updated within the last 18 months.
- Paper: a postal address (the patient's, or the one the order gives)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from eprom_protocol.enums import NotificationChannel as Channel

from .synthetic import PostalAddress

HELSENORGE_AGE = 16
DIGITAL_MAILBOX_AGE = 18
UNSECURE_AGE = 13
DIGITALLY_ACTIVE_MONTHS = 18
CONSENTS = ("full", "limited", "none")


@dataclass(frozen=True)
class ContactRegister:
    email: str | None
    mobile: str | None
    last_updated: date

    def to_json(self) -> dict:
        return {"email": self.email, "mobile": self.mobile, "lastUpdated": self.last_updated.isoformat()}


@dataclass(frozen=True)
class Profile:
    helsenorge_consent: str = "full"  # one of CONSENTS
    represented_by: str | None = None  # a parent or guardian's national id
    reserved_against_research: bool = False
    digital_mailbox: bool = True
    contact_register: ContactRegister | None = None
    postal_address: PostalAddress | None = None

    def to_json(self) -> dict:
        return {
            "helsenorgeConsent": self.helsenorge_consent,
            "representedBy": self.represented_by,
            "reservedAgainstResearch": self.reserved_against_research,
            "digitalMailbox": self.digital_mailbox,
            "contactRegister": None if self.contact_register is None else self.contact_register.to_json(),
            "postalAddress": None if self.postal_address is None else self.postal_address.to_json(),
        }


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def digitally_active(last_updated: date, today: date) -> bool:
    """Contact data updated within the last 18 calendar months (on the day 18 months ago still counts)."""
    months = (today.year - last_updated.year) * 12 + (today.month - last_updated.month)
    return months < DIGITALLY_ACTIVE_MONTHS or (months == DIGITALLY_ACTIVE_MONTHS and today.day <= last_updated.day)


def channels(profile: Profile, birth: date, today: date, *, research: bool,
             order_has_address: bool = False) -> frozenset[Channel]:
    """The channels that reach the patient today, for an ordering system that is (or is not) research."""
    age = age_on(birth, today)
    found = set()
    if ((age >= HELSENORGE_AGE or profile.represented_by is not None) and profile.helsenorge_consent == "full"
            and not (research and profile.reserved_against_research)):
        found.add(Channel.Helsenorge)
    if profile.digital_mailbox and age >= DIGITAL_MAILBOX_AGE:
        found.add(Channel.DigitalMailbox)
    contact = profile.contact_register
    if (contact is not None and (contact.email or contact.mobile) and age >= UNSECURE_AGE
            and digitally_active(contact.last_updated, today)):
        found.add(Channel.Unsecure)
    if profile.postal_address is not None or order_has_address:
        found.add(Channel.PhysicalMailbox)
    return frozenset(found)
