"""The simulated population: patient profiles (which channels reach them, when they answer, fixed answers)
and the default patient an open population assumes for any valid id."""
from __future__ import annotations

import copy
import random
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import isodate

from eprom_protocol.enums import NotificationChannel as Channel
from eprom_protocol.messages import ProtocolError
from eprom_protocol.national_id import make_synthetic, mask, require_orderable
from eprom_protocol.timefmt import parse_duration

from .config import OrderingSystem
from .distribution import REAL_CHANNELS

PATIENT_FIELDS = ("nationalId", "reachable", "answer", "formData", "reservedAgainstResearch")
SYNTHETIC_AGE_YEARS = (20, 85)
MAX_FORM_DATA_DEPTH = 32  # generated patients are adults of these ages


@dataclass(frozen=True, eq=False)
class Patient:
    national_id: str
    reachable: frozenset[Channel] = frozenset(REAL_CHANNELS)
    answer_after: timedelta | None = None  # None: never answers on their own
    form_data: dict | None = None  # fixed answers for every form they fill out
    reserved_against_research: bool = False  # not reached on Helsenorge by research ordering systems

    def reachable_for(self, system: OrderingSystem) -> frozenset[Channel]:
        if system.research and self.reserved_against_research:
            return self.reachable - {Channel.Helsenorge}
        return self.reachable

    def to_json(self) -> dict:
        return {
            "nationalId": self.national_id,
            "reachable": [c.wire_name for c in REAL_CHANNELS if c in self.reachable],
            "answer": None if self.answer_after is None else {"after": isodate.duration_isoformat(self.answer_after)},
            "formData": copy.deepcopy(self.form_data),
            "reservedAgainstResearch": self.reserved_against_research,
        }

    def __repr__(self) -> str:  # never a full national id or answer data in logs
        return f"Patient({mask(self.national_id)}, reachable={sorted(c.wire_name for c in self.reachable)})"


def default_patient(national_id: str) -> Patient:
    """An open population's patient for an id nobody described: reachable everywhere, never answers."""
    return Patient(national_id)


class Population:
    """The patients the control API described, and the rule for everyone else."""

    def __init__(self, mode: str, rng: random.Random):
        self.mode = mode
        self._rng = rng
        self._patients: dict[str, Patient] = {}
        self._lock = threading.Lock()

    def put(self, patient: Patient) -> None:
        with self._lock:
            self._patients[patient.national_id] = patient

    def lookup(self, national_id: str) -> Patient | None:
        """The described patient; else the default patient (open) or None (strict: not in the population)."""
        with self._lock:
            found = self._patients.get(national_id)
        if found is not None or self.mode == "strict":
            return found
        return default_patient(national_id)

    def all(self) -> list[Patient]:
        with self._lock:
            return list(self._patients.values())

    def new_synthetic_id(self, today: date) -> str:
        """A fresh month+65 test id of an adult, drawn from the seeded generator."""
        low, high = SYNTHETIC_AGE_YEARS
        with self._lock:
            while True:
                birth = today - timedelta(days=self._rng.randint(low * 365 + 5, high * 365))
                value = make_synthetic(self._rng, birth)
                if value not in self._patients:
                    return value

    def parse(self, body: dict[str, Any], today: date) -> Patient:
        """A patient from a POST /_sim/patients body; ProtocolError(400) naming what is wrong."""
        unknown = sorted(set(body) - set(PATIENT_FIELDS))
        if unknown:
            raise ProtocolError(f"unknown field(s) {', '.join(unknown)}; a patient has: {', '.join(PATIENT_FIELDS)}")
        national_id = body.get("nationalId")
        if national_id is None:
            national_id = self.new_synthetic_id(today)
        else:
            national_id = require_orderable(national_id).value
        return Patient(
            national_id=national_id,
            reachable=_parse_reachable(body.get("reachable", [c.wire_name for c in REAL_CHANNELS])),
            answer_after=_parse_answer(body.get("answer")),
            form_data=parse_form_data(body.get("formData")),
            reserved_against_research=_parse_bool(body.get("reservedAgainstResearch", False),
                                                  "reservedAgainstResearch"),
        )


def _parse_reachable(value: Any) -> frozenset[Channel]:
    if not isinstance(value, list):
        raise ProtocolError("reachable: must be a list of channels such as [\"Helsenorge\", \"DigitalMailbox\"] "
                            "([] = unreachable)")
    channels = set()
    for item in value:
        try:
            channel = Channel.parse(item)
        except ValueError as err:
            raise ProtocolError(f"reachable: {err}") from None
        if channel is Channel.None_:
            raise ProtocolError("reachable: None is not a channel; use [] for a patient nobody can reach")
        channels.add(channel)
    return frozenset(channels)


def _parse_answer(value: Any) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"after"}:
        raise ProtocolError("answer: must be {\"after\": \"<ISO-8601 duration such as P3D>\"} or null (never answers)")
    if not isinstance(value["after"], str):
        raise ProtocolError("answer.after: must be an ISO-8601 duration string such as 'P3D'")
    return parse_duration(value["after"], "answer.after")


def parse_form_data(value: Any) -> dict | None:
    """Fixed answers (question id -> answer) as the control API takes them, or None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError("formData: must be a JSON object (question id -> answer) or null")
    if _depth(value) > MAX_FORM_DATA_DEPTH:
        raise ProtocolError(f"formData: nested deeper than {MAX_FORM_DATA_DEPTH} levels")
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


def _parse_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(f"{field}: must be true or false")
    return value
