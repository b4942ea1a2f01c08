"""The simulated population: patients as ePROM sees them (a profile that decides which channels reach them)
and how each behaves (answers, never answers, opens and leaves, signs after a false start...), parsed from
a `POST /_sim/patients` body (the contract is fake_eprom.patient_schema.PATIENT_SCHEMA), and the default
patient an open population assumes for any valid id."""
from __future__ import annotations

import copy
import math
import random
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable

import isodate

from eprom_protocol.enums import FilledOutByActType, NotificationChannel as Channel
from eprom_protocol.json_text import shown
from eprom_protocol.messages import ProtocolError
from eprom_protocol.national_id import (ENCODABLE_BIRTH_YEARS, ENCODABLE_BIRTH_YEARS_TEXT, classify, mask,
                                        require_orderable)
from eprom_protocol import timefmt

from .distribution import REAL_CHANNELS
from .forms import Form
from .patient_schema import (
    BEHAVIOURS,
    DATE_PATTERN,
    DURATION_PATTERN,
    HELSENORGE_CONSENTS,
    PATIENT_SCHEMA,
    REAL_CHANNEL_NAMES,
)
from .reachability import ContactRegister, Profile, age_on, channels
from .synthetic import Person, PersonFactory, PostalAddress, birth_date_for_age, synthetic_id

PATIENT_FIELDS = tuple(PATIENT_SCHEMA["properties"])
PROFILE_FIELDS = tuple(PATIENT_SCHEMA["properties"]["profile"]["anyOf"][0]["properties"])
ANSWER_FIELDS = ("after", "formData", "partial", "warnings", "onPaper", "filledOutBy")
DEFAULT_AGE = 45
MAX_AGE = 120
MAX_FORM_DATA_DEPTH = 32
CONTACT_DATA_AGE = timedelta(days=30)  # default contact data was updated this long before the clock's start
DEFAULT_INITIATED_ANSWER_AFTER = timedelta(minutes=10)

# behaviours
ANSWERS, NEVER, OPENS_NEVER_DELIVERS, ANSWERS_AFTER_EXPIRY, CANCELS_SIGNING_THEN_SIGNS, PAPER_MAIL_RETURNED = \
    BEHAVIOURS
NEEDS_ANSWER = frozenset({ANSWERS, CANCELS_SIGNING_THEN_SIGNS})
NO_ANSWER = frozenset({NEVER, PAPER_MAIL_RETURNED})

_DURATION_RE = re.compile(DURATION_PATTERN)
_DATE_RE = re.compile(DATE_PATTERN)


@dataclass(frozen=True)
class FilledOutBy:
    national_id: str | None
    act_type: FilledOutByActType

    def to_json(self) -> dict:
        return {"nationalId": self.national_id, "actType": self.act_type.name}


@dataclass(frozen=True, eq=False)
class AnswerPlan:
    """How the patient answers: when (after the order reached them), with what, and how."""

    after: timedelta
    form_data: dict | None = None  # fixed answers; None: generated from the form's questions
    partial: bool = False  # leave some questions out (they come back as formDataWarnings)
    warnings: tuple[dict, ...] = ()  # extra formDataWarnings, as given
    on_paper: bool | None = None  # None: on paper exactly when the order went by paper
    filled_out_by: FilledOutBy | None = None  # None: worked out from the order and the profile

    def to_json(self) -> dict:
        out: dict[str, Any] = {"after": isodate.duration_isoformat(self.after)}
        if self.form_data is not None:
            out["formData"] = copy.deepcopy(self.form_data)
        if self.partial:
            out["partial"] = True
        if self.warnings:
            out["warnings"] = [dict(w) for w in self.warnings]
        if self.on_paper is not None:
            out["onPaper"] = self.on_paper
        if self.filled_out_by is not None:
            out["filledOutBy"] = self.filled_out_by.to_json()
        return out


@dataclass(frozen=True)
class Initiation:
    """A form the patient orders by themself, `after` the patient was described."""

    form_id: str
    after: timedelta
    answer: AnswerPlan

    def to_json(self) -> dict:
        return {"formId": self.form_id, "after": isodate.duration_isoformat(self.after),
                "answer": self.answer.to_json()}


@dataclass(frozen=True, eq=False)
class Patient:
    national_id: str
    birth_date: date
    name: str
    profile: Profile
    reachable_override: frozenset[Channel] | None = None  # given: exactly these channels, whatever the profile
    answer: AnswerPlan | None = None  # None: never answers on their own
    form_data: dict | None = None  # fixed answers for every form they fill out (older spelling)
    behaviour: str = NEVER
    initiates: tuple[Initiation, ...] = ()
    added_at: datetime | None = None  # None: the open population's default patient

    def channels(self, today: date, *, research: bool = False, order_has_address: bool = False) -> frozenset[Channel]:
        """The channels that reach the patient today (for a research ordering system or not)."""
        if self.reachable_override is not None:  # the channel facts are given; the research reservation still holds
            if research and self.profile.reserved_against_research:
                return self.reachable_override - {Channel.Helsenorge}
            return self.reachable_override
        return channels(self.profile, self.birth_date, today, research=research, order_has_address=order_has_address)

    def age(self, today: date) -> int:
        return age_on(self.birth_date, today)

    def fixed_form_data(self) -> dict | None:
        if self.answer is not None and self.answer.form_data is not None:
            return self.answer.form_data
        return self.form_data

    def to_json(self, today: date) -> dict:
        return {
            "nationalId": self.national_id,
            "birthDate": self.birth_date.isoformat(),
            "age": self.age(today),
            "name": self.name,
            "reachable": [c.wire_name for c in REAL_CHANNELS if c in self.channels(today)],
            "reachableFrom": "profile" if self.reachable_override is None else "reachable",
            "profile": self.profile.to_json(),
            "answer": None if self.answer is None else self.answer.to_json(),
            "formData": copy.deepcopy(self.form_data),
            "reservedAgainstResearch": self.profile.reserved_against_research,
            "behaviour": self.behaviour,
            "initiates": [i.to_json() for i in self.initiates],
        }

    def __repr__(self) -> str:  # never a full national id, a name or answer data in logs
        return f"Patient({mask(self.national_id)}, behaviour={self.behaviour})"


class Population:
    """The patients the control API described, and the default patient for everyone else."""

    def __init__(self, mode: str, rng: random.Random, persons: PersonFactory, clock_start: datetime):
        self.mode = mode
        self._rng = rng
        self.persons = persons
        self.contact_updated = timefmt.norwegian_date(clock_start) - CONTACT_DATA_AGE
        self._patients: dict[str, Patient] = {}
        self._lock = threading.Lock()

    def put(self, patient: Patient) -> Patient | None:
        """Add or replace a patient; returns the one replaced."""
        with self._lock:
            old = self._patients.get(patient.national_id)
            self._patients[patient.national_id] = patient
            return old

    def described(self, national_id: str) -> Patient | None:
        with self._lock:
            return self._patients.get(national_id)

    def lookup(self, national_id: str, today: date) -> Patient | None:
        """The described patient; else the default patient in an open population; None when strict, or when the
        id is born after today: it belongs to nobody yet (ePROM's "fødselsnummeret ikke eksisterer")."""
        found = self.described(national_id)
        if found is not None or self.mode == "strict":
            return found
        if _birth_after(national_id, today) is not None:
            return None
        return self.default_patient(national_id)

    def default_patient(self, national_id: str) -> Patient:
        """Someone nobody described: the default profile (so the channels their age allows), never answers."""
        birth = classify(national_id).birth_date
        assert birth is not None  # an orderable id always has one
        person = self.persons.person(national_id)  # Faker's part is kept for the next lookup (synthetic.py)
        return Patient(national_id, birth, person.name, self._default_profile(person))

    def all(self) -> list[Patient]:
        with self._lock:
            return list(self._patients.values())

    def _default_profile(self, person: Person, **given: Any) -> Profile:
        defaults = {"contact_register": ContactRegister(person.email, person.mobile, self.contact_updated),
                    "postal_address": person.address}
        return Profile(**{**defaults, **given})

    # --- parsing ------------------------------------------------------------------------
    def parse(self, body: dict[str, Any], now: datetime, forms: Callable[[str], Form | None]) -> Patient:
        """A patient from a POST /_sim/patients body; ProtocolError(400) naming the field and what is wrong.
        `forms` finds a catalog form by id (for initiates)."""
        _only(body, PATIENT_FIELDS, "", "a patient")
        body = _without_nulls(body)
        today = timefmt.norwegian_date(now)
        national_id, birth = self._identity(body, today)
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or not name):
            raise ProtocolError("name: must be a non-empty string")
        name = name or self.persons.person(national_id).name
        profile = self._profile(body, national_id, name)
        override = _reachable(body["reachable"]) if "reachable" in body else None
        answer = _answer(body.get("answer"), "answer", required_after=True)
        behaviour = _behaviour(body.get("behaviour"), answer)
        form_data = parse_form_data(body.get("formData"))
        if answer is not None and answer.on_paper:
            if override is not None:
                paper = Channel.PhysicalMailbox in override
            else:
                paper = profile.postal_address is not None
            if not paper:
                raise ProtocolError("answer.onPaper: the patient cannot be reached on paper (no PhysicalMailbox in "
                                    "reachable, or profile.postalAddress is null)")
        initiates = _initiates(body.get("initiates"), forms)
        if profile.represented_by is not None:
            _require_born(profile.represented_by, today, "profile.representedBy")
        plans = [("answer", answer)] + [(f"initiates[{i}].answer", x.answer) for i, x in enumerate(initiates)]
        for where, plan in plans:
            if plan is not None and plan.filled_out_by is not None and plan.filled_out_by.national_id is not None:
                _require_born(plan.filled_out_by.national_id, today, f"{where}.filledOutBy.nationalId")
        return Patient(national_id=national_id, birth_date=birth, name=name, profile=profile,
                       reachable_override=override, answer=answer, form_data=form_data, behaviour=behaviour,
                       initiates=initiates, added_at=now)

    def _identity(self, body: dict, today: date) -> tuple[str, date]:
        birth = _date(body["birthDate"], "birthDate") if "birthDate" in body else None
        age = body.get("age")
        if "age" in body:
            if not _is_integer(age) or not 0 <= age <= MAX_AGE:
                raise ProtocolError(f"age: must be a whole number of years from 0 to {MAX_AGE}")
            age = int(age)
        if birth is not None and birth > today:
            raise ProtocolError(f"birthDate: {birth.isoformat()} is after the simulated clock's today "
                                f"({today.isoformat()})")
        if birth is not None and age is not None and age_on(birth, today) != age:
            raise ProtocolError(f"age: someone born {birth.isoformat()} is {age_on(birth, today)} today, not {age}")
        if body.get("nationalId") is None:
            if birth is None:
                years = DEFAULT_AGE if age is None else age
                earliest, latest = today.year - years - 1, today.year - years  # the birth year is one of them
                if earliest < ENCODABLE_BIRTH_YEARS.start or latest not in ENCODABLE_BIRTH_YEARS:
                    who = (f"age: someone {years} years old" if age is not None  # else no field was given
                           else f"(no nationalId, birthDate or age) the default patient, {years} years old")
                    raise ProtocolError(f"{who} on {today.isoformat()}, was born about {today.year - years}; "
                                        f"{ENCODABLE_BIRTH_YEARS_TEXT} (start the clock nearer today)")
                birth = birth_date_for_age(years, today, self._rng)
            elif not (age_on(birth, today) <= MAX_AGE and birth.year in ENCODABLE_BIRTH_YEARS):
                raise ProtocolError(f"birthDate: {birth.isoformat()}: a synthetic id needs a birth at most {MAX_AGE} "
                                    f"years ago; {ENCODABLE_BIRTH_YEARS_TEXT}")
            with self._lock:
                return synthetic_id(birth, self._rng, set(self._patients)), birth
        nid = require_orderable(body["nationalId"])
        assert nid.birth_date is not None
        if birth is not None and birth != nid.birth_date:
            raise ProtocolError(f"birthDate: {birth.isoformat()} is not the birth date in nationalId "
                                f"({nid.birth_date.isoformat()}); leave one of them out")
        _require_born(nid.value, today, "nationalId")
        if age is not None and age_on(nid.birth_date, today) != age:
            raise ProtocolError(f"age: nationalId says {age_on(nid.birth_date, today)} years today, not {age}; "
                                "leave one of them out")
        return nid.value, nid.birth_date

    def _profile(self, body: dict, national_id: str, name: str) -> Profile:
        raw = body.get("profile", {})
        if not isinstance(raw, dict):
            raise ProtocolError("profile: must be an object")
        _only(raw, PROFILE_FIELDS, "profile.", "a profile")
        raw = _without_nulls(raw, keep=("contactRegister", "postalAddress"))
        given: dict[str, Any] = {}
        if "helsenorgeConsent" in raw:
            if raw["helsenorgeConsent"] not in HELSENORGE_CONSENTS:
                raise ProtocolError(f"profile.helsenorgeConsent: must be one of {', '.join(HELSENORGE_CONSENTS)}")
            given["helsenorge_consent"] = raw["helsenorgeConsent"]
        if "representedBy" in raw:
            represented_by = require_orderable(raw["representedBy"], "profile.representedBy").value
            if represented_by == national_id:
                raise ProtocolError("profile.representedBy: a patient cannot represent themself")
            given["represented_by"] = represented_by
        reserved = {}
        for where, container in (("profile.", raw), ("", body)):
            if "reservedAgainstResearch" in container:
                reserved[where] = _bool(container["reservedAgainstResearch"], f"{where}reservedAgainstResearch")
        if len(set(reserved.values())) > 1:
            raise ProtocolError("reservedAgainstResearch: says the opposite of profile.reservedAgainstResearch; "
                                "give it once")
        if reserved:
            given["reserved_against_research"] = next(iter(reserved.values()))
        if "digitalMailbox" in raw:
            given["digital_mailbox"] = _bool(raw["digitalMailbox"], "profile.digitalMailbox")
        if "contactRegister" in raw:
            given["contact_register"] = _contact_register(raw["contactRegister"])
        if "postalAddress" in raw:
            given["postal_address"] = _postal_address(raw["postalAddress"])
        return self._default_profile(self.persons.person(national_id, name), **given)


def _birth_after(national_id: str, today: date) -> date | None:
    """The id's birth date when that is after today (nobody has the id yet), else None."""
    birth = classify(national_id).birth_date
    return birth if birth is not None and birth > today else None


def _require_born(national_id: str, today: date, field: str) -> None:
    """Nobody with an id born after today exists yet: not the patient, nor who represents them or answers."""
    if (birth := _birth_after(national_id, today)) is not None:
        raise ProtocolError(f"{field}: its birth date {birth.isoformat()} is after the simulated clock's today "
                            f"({today.isoformat()})")


# --- field parsers ------------------------------------------------------------------------
def _only(value: dict, allowed: tuple[str, ...], prefix: str, what: str) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        where = prefix.rstrip(".") + ": " if prefix else ""
        raise ProtocolError(f"{where}unknown field(s) {', '.join(map(str, unknown))}; {what} has: {', '.join(allowed)}")


def _without_nulls(value: dict, keep: tuple[str, ...] = ()) -> dict:
    """Null means the same as leaving the field out (as .NET clients send unset optionals), except in `keep`."""
    return {k: v for k, v in value.items() if v is not None or k in keep}


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema's uniqueItems sees it: 1 and 1.0 are equal, 1 and true are not."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return a == b
    return type(a) is type(b) and a == b


def _is_integer(value: Any) -> bool:
    """An integer as JSON Schema counts them: 45 and 45.0, not true."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(f"{where}: must be true or false")
    return value


def _date(value: Any, where: str) -> date:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ProtocolError(f"{where}: must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ProtocolError(f"{where}: {value!r} is not a real date") from None


def parse_duration(value: Any, where: str) -> timedelta:
    """An ISO-8601 duration in weeks, days, hours, minutes, seconds (PATIENT_SCHEMA's pattern, narrower than
    what timefmt.parse_duration reads; its texts say what is wrong)."""
    if not isinstance(value, str):
        raise ProtocolError(f"{where}: must be an ISO-8601 duration string such as 'P3D'")
    parsed = timefmt.parse_duration(value, where)  # at most timefmt.LONGEST_DURATION
    if not _DURATION_RE.match(value):
        raise ProtocolError(timefmt.not_a_duration(value, where))
    return parsed


def _reachable(value: Any) -> frozenset[Channel]:
    if not isinstance(value, list):
        raise ProtocolError("reachable: must be a list of channels such as [\"Helsenorge\", \"DigitalMailbox\"] "
                            "([] = unreachable)")
    found: list[Channel] = []
    seen_values: list[Any] = []
    for item in value:
        if isinstance(item, str) and item in REAL_CHANNEL_NAMES:
            channel = Channel[item]
        elif _is_integer(item) and 1 <= item <= len(REAL_CHANNELS):
            channel = Channel(int(item))
        elif (_is_integer(item) and item == 0) or item == "None":
            raise ProtocolError("reachable: None is not a channel; use [] for a patient nobody can reach")
        else:
            raise ProtocolError(f"reachable: {shown(item)} is not a channel; use the names "
                                f"{', '.join(REAL_CHANNEL_NAMES)} or the numbers 1 to {len(REAL_CHANNELS)}")
        if any(_json_equal(item, seen) for seen in seen_values):
            raise ProtocolError(f"reachable: {shown(item)} is listed twice")
        seen_values.append(item)
        found.append(channel)
    return frozenset(found)


def _behaviour(value: Any, answer: AnswerPlan | None) -> str:
    if value is None:
        return ANSWERS if answer is not None else NEVER
    if value not in BEHAVIOURS:
        raise ProtocolError(f"behaviour: must be one of {', '.join(BEHAVIOURS)}")
    if value in NEEDS_ANSWER and answer is None:
        raise ProtocolError(f"behaviour: {value} needs an answer such as {{\"after\": \"P3D\"}}")
    if value in NO_ANSWER and answer is not None:
        raise ProtocolError(f"behaviour: a patient who is {value} gives no answer; leave answer out (or null)")
    return value


def _answer(value: Any, where: str, *, required_after: bool) -> AnswerPlan | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}: must be an object such as {{\"after\": \"P3D\"}}, or null (never answers)")
    _only(value, ANSWER_FIELDS, where + ".", "an answer")
    value = _without_nulls(value, keep=("after",) if required_after else ())
    if "after" in value:
        after = parse_duration(value["after"], f"{where}.after")
    elif required_after:
        raise ProtocolError(f"{where}.after: is required (an ISO-8601 duration such as 'P3D')")
    else:
        after = DEFAULT_INITIATED_ANSWER_AFTER
    warnings = value.get("warnings", [])
    if not isinstance(warnings, list):
        raise ProtocolError(f"{where}.warnings: must be a list of {{\"fieldName\": ..., \"warning\": ...}}")
    for i, warning in enumerate(warnings):
        if (not isinstance(warning, dict) or set(warning) != {"fieldName", "warning"}
                or not all(isinstance(v, str) for v in warning.values())):
            raise ProtocolError(f"{where}.warnings[{i}]: must be {{\"fieldName\": <text>, \"warning\": <text>}}")
    on_paper = _bool(value["onPaper"], f"{where}.onPaper") if "onPaper" in value else None
    return AnswerPlan(after=after, form_data=parse_form_data(value.get("formData"), f"{where}.formData"),
                      partial=_bool(value.get("partial", False), f"{where}.partial"),
                      warnings=tuple(dict(w) for w in warnings), on_paper=on_paper,
                      filled_out_by=_filled_out_by(value.get("filledOutBy"), f"{where}.filledOutBy")
                      if "filledOutBy" in value else None)


def _filled_out_by(value: Any, where: str) -> FilledOutBy:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}: must be an object such as {{\"nationalId\": ..., \"actType\": \"Fullmakt\"}}")
    _only(value, ("nationalId", "actType"), where + ".", "filledOutBy")
    names = [m.name for m in FilledOutByActType]
    if value.get("actType") not in names:
        raise ProtocolError(f"{where}.actType: must be one of {', '.join(names)}")
    national_id = value.get("nationalId")
    if national_id is not None:
        national_id = require_orderable(national_id, f"{where}.nationalId").value
    return FilledOutBy(national_id, FilledOutByActType[value["actType"]])


def _contact_register(value: Any) -> ContactRegister | None:
    if value is None:
        return None
    where = "profile.contactRegister"
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}: must be an object {{email, mobile, lastUpdated}} or null")
    _only(value, ("email", "mobile", "lastUpdated"), where + ".", "contactRegister")
    for key in ("email", "mobile"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise ProtocolError(f"{where}.{key}: must be a string or null")
    if "lastUpdated" not in value:
        raise ProtocolError(f"{where}.lastUpdated: is required (YYYY-MM-DD)")
    return ContactRegister(value.get("email"), value.get("mobile"), _date(value["lastUpdated"], f"{where}.lastUpdated"))


def _postal_address(value: Any) -> PostalAddress | None:
    if value is None:
        return None
    where = "profile.postalAddress"
    keys = ("fullName", "addressLine1", "postalCode", "postalPlace")
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}: must be an object {{{', '.join(keys)}}} or null")
    _only(value, keys, where + ".", "postalAddress")
    for key in keys:
        if not isinstance(value.get(key), str) or not value[key]:
            raise ProtocolError(f"{where}.{key}: is required (a non-empty string)")
    return PostalAddress(*(value[k] for k in keys))


def _initiates(value: Any, forms: Callable[[str], Form | None]) -> tuple[Initiation, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProtocolError("initiates: must be a list of {\"formId\": ..., \"after\": \"P1D\"}")
    found = []
    for i, item in enumerate(value):
        where = f"initiates[{i}]"
        if not isinstance(item, dict):
            raise ProtocolError(f"{where}: must be an object {{formId, after, answer}}")
        _only(item, ("formId", "after", "answer"), where + ".", "an initiated form")
        form_id = item.get("formId")
        if not isinstance(form_id, str):
            raise ProtocolError(f"{where}.formId: is required (a form's uuid)")
        form = forms(form_id)
        if form is None:
            raise ProtocolError(f"{where}.formId: no form with id '{form_id}' in the catalog")
        if form.owner is None:
            raise ProtocolError(f"{where}.formId: form '{form.name}' has no owner, so a patient cannot order it "
                                "(give the form an owner in the catalog)")
        if not form.published:
            raise ProtocolError(f"{where}.formId: form '{form.name}' is not published")
        if "after" not in item:
            raise ProtocolError(f"{where}.after: is required (an ISO-8601 duration such as 'P1D')")
        after = parse_duration(item["after"], f"{where}.after")
        answer = item.get("answer") or {}
        if not isinstance(answer, dict):
            raise ProtocolError(f"{where}.answer: must be an object (the patient answers what they ordered)")
        plan = _answer(answer, f"{where}.answer", required_after=False)
        assert plan is not None
        found.append(Initiation(form.id, after, plan))
    return tuple(found)


def parse_form_data(value: Any, where: str = "formData") -> dict | None:
    """Fixed answers (question id -> answer) as the control API takes them, or None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}: must be a JSON object (question id -> answer) or null")
    if _depth(value) > MAX_FORM_DATA_DEPTH:
        raise ProtocolError(f"{where}: nested deeper than {MAX_FORM_DATA_DEPTH} levels")
    return copy.deepcopy(value)


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_FORM_DATA_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest

