"""Synthetic people only: seeded Faker (no_NO) names, addresses and contact data, and synthetic national ids
(month + 65) for a birth date or an age. Nothing here is a real person.

A person's generated details depend only on the seed and their national id, never on the order in which
patients were described or looked up."""
from __future__ import annotations

import random
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import date, timedelta

from faker import Faker

from eprom_protocol.national_id import make_synthetic

FAKER_LOCALE = "no_NO"  # Faker spells Norwegian Bokmål no_NO (it has no nb_NO)
MOBILE_FIRST_DIGITS = "49"  # Norwegian mobile numbers start with 4 or 9
REMEMBER_PEOPLE = 4096  # generated people kept for their next lookup


@dataclass(frozen=True)
class PostalAddress:
    full_name: str
    address_line1: str
    postal_code: str
    postal_place: str

    def to_json(self) -> dict:
        return {"fullName": self.full_name, "addressLine1": self.address_line1, "postalCode": self.postal_code,
                "postalPlace": self.postal_place}


@dataclass(frozen=True)
class Person:
    """What the population registers know of someone, generated."""

    name: str
    address: PostalAddress
    email: str
    mobile: str


class PersonFactory:
    """Thread-safe: one Faker, reseeded per person under a lock. The people generated lately are kept (Faker
    takes about 0.1 ms a person, and an order looks its patient up more than once); the details are the
    same whether kept or generated again."""

    def __init__(self, seed: int | str | None, remember: int = REMEMBER_PEOPLE):
        self._seed = seed
        self._faker = Faker(FAKER_LOCALE)
        self._lock = threading.Lock()
        self._remember = remember
        self._recent: OrderedDict[str, Person] = OrderedDict()

    def person(self, national_id: str, name: str | None = None) -> Person:
        """The generated details of the person with this id (name: a given name wins over the generated one)."""
        with self._lock:
            generated = self._recent.get(national_id)
            if generated is None:
                generated = self._recent[national_id] = self._generate(national_id)
                if len(self._recent) > self._remember:
                    self._recent.popitem(last=False)
            else:
                self._recent.move_to_end(national_id)
        if not name or name == generated.name:
            return generated
        return Person(name, replace(generated.address, full_name=name), generated.email, generated.mobile)

    def _generate(self, national_id: str) -> Person:
        self._faker.seed_instance(f"{self._seed}:person:{national_id}")
        name = self._faker.name()
        street, postcode, city = self._faker.street_address(), self._faker.postcode(), self._faker.city()
        email = self._faker.safe_email()  # example.org/.com/.net: nobody's real mailbox
        rng = random.Random(f"{self._seed}:mobile:{national_id}")
        mobile = rng.choice(MOBILE_FIRST_DIGITS) + f"{rng.randrange(10 ** 7):07d}"
        return Person(name, PostalAddress(name, street, postcode, city), email, mobile)


def birth_date_for_age(age: int, today: date, rng: random.Random) -> date:
    """A birth date, drawn from rng, of someone who is exactly `age` years old today."""
    latest = _years_before(today, age)
    earliest = _years_before(today, age + 1) + timedelta(days=1)
    return earliest + timedelta(days=rng.randrange((latest - earliest).days + 1))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def synthetic_id(birth: date, rng: random.Random, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A month+65 test id for the birth date that is not in `taken`."""
    while True:
        value = make_synthetic(rng, birth)
        if value not in taken:
            return value
