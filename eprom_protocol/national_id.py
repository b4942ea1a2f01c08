"""Norwegian national ids: classification, check digits, birth dates, synthetic ids and masking (SPEC §5)."""
from __future__ import annotations

import re
import random
from dataclasses import dataclass
from datetime import date
from enum import Enum

from .messages import ProtocolError, fh_number_not_supported, h_number_not_supported, malformed_national_id

WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)

SYNTHETIC_TEST_OFFSET = 65  # the health sector's test population (month + 65)
SYNTHETIC_TAX_OFFSET = 80  # the tax authority's synthetic register (month + 80)
H_NUMBER_OFFSET = 40


class IdKind(Enum):
    FODSELSNUMMER = "fødselsnummer"
    D_NUMMER = "D-nummer"
    H_NUMMER = "H-nummer"
    FH_NUMMER = "FH-nummer"


class Synthetic(Enum):
    NO = "real"
    TEST = "month+65"
    TAX = "month+80"


@dataclass(frozen=True)
class NationalId:
    value: str
    kind: IdKind
    synthetic: Synthetic
    birth_date: date | None

    @property
    def orderable(self) -> bool:
        return self.kind in (IdKind.FODSELSNUMMER, IdKind.D_NUMMER)


def check_digits(first_nine: str) -> str | None:
    """The two mod-11 check digits for nine digits, or None when no valid pair exists."""
    digits = [int(c) for c in first_nine]
    k1 = _mod11(digits, WEIGHTS_1)
    if k1 is None:
        return None
    k2 = _mod11(digits + [k1], WEIGHTS_2)
    if k2 is None:
        return None
    return f"{k1}{k2}"


def _mod11(digits: list[int], weights: tuple[int, ...]) -> int | None:
    rest = 11 - sum(d * w for d, w in zip(digits, weights)) % 11
    if rest == 11:
        return 0
    if rest == 10:
        return None
    return rest


def _century(year2: int, individual: int) -> int | None:
    if individual <= 499:
        return 1900
    if individual <= 749 and year2 >= 54:
        return 1800
    if year2 <= 39:
        return 2000
    if individual >= 900:
        return 1900
    return None


def classify(value: object, field: str = "nationalId") -> NationalId:
    """Classify an id; raises ProtocolError with SPEC §1's text for H/FH and ours for malformed ids."""
    if not isinstance(value, str):
        raise ProtocolError(malformed_national_id(field, "it must be a string of 11 digits"))
    if len(value) != 11 or not (value.isascii() and value.isdigit()):  # "²".isdigit() is True
        raise ProtocolError(malformed_national_id(field, "it must be exactly 11 digits"))
    if value[0] in "89":
        return NationalId(value, IdKind.FH_NUMMER, Synthetic.NO, None)
    if check_digits(value[:9]) != value[9:]:
        raise ProtocolError(malformed_national_id(field, "the check digits are wrong"))
    day, month, year2, individual = int(value[0:2]), int(value[2:4]), int(value[4:6]), int(value[6:9])
    kind = IdKind.FODSELSNUMMER
    if day > 40:
        kind, day = IdKind.D_NUMMER, day - 40
    synthetic = Synthetic.NO
    if month > SYNTHETIC_TAX_OFFSET:
        synthetic, month = Synthetic.TAX, month - SYNTHETIC_TAX_OFFSET
    elif month > SYNTHETIC_TEST_OFFSET:
        synthetic, month = Synthetic.TEST, month - SYNTHETIC_TEST_OFFSET
    elif month > H_NUMBER_OFFSET:  # an H-nummer only when month - 40 is a real month (checked below)
        kind, month = IdKind.H_NUMMER, month - H_NUMBER_OFFSET
    century = _century(year2, individual)
    try:
        if century is None:
            raise ValueError("no century")
        birth = date(century + year2, month, day)
    except ValueError:
        raise ProtocolError(malformed_national_id(field, "the birth date is not a real date")) from None
    return NationalId(value, kind, synthetic, birth)


def require_orderable(value: object, field: str = "nationalId") -> NationalId:
    """Classify and insist on a fødselsnummer or D-nummer, with the documented texts (naming `field`)."""
    nid = classify(value, field)
    if nid.kind is IdKind.FH_NUMMER:
        raise ProtocolError(fh_number_not_supported(field))
    if nid.kind is IdKind.H_NUMMER:
        raise ProtocolError(h_number_not_supported(field))
    return nid


def age_on(nid: NationalId, today: date) -> int | None:
    if nid.birth_date is None:
        return None
    b = nid.birth_date
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


#: The birth years the individual number ranges can tell apart: 500-749 with year digits 54-99 are 1854-1899,
#: 500-999 with 00-39 are 2000-2039.
ENCODABLE_BIRTH_YEARS = range(1854, 2040)
ENCODABLE_BIRTH_YEARS_TEXT = (f"national ids tell births from {ENCODABLE_BIRTH_YEARS.start} to "
                              f"{ENCODABLE_BIRTH_YEARS.stop - 1} only")


def make_synthetic(
    rng: random.Random, birth_date: date, offset: int = SYNTHETIC_TEST_OFFSET, d_number: bool = False
) -> str:
    """A synthetic id (month + offset) with valid check digits for a birth date, drawn from rng. ValueError for a
    birth year no national id can tell (ENCODABLE_BIRTH_YEARS)."""
    if birth_date.year not in ENCODABLE_BIRTH_YEARS:
        raise ValueError(f"no national id tells a birth in {birth_date.year}: {ENCODABLE_BIRTH_YEARS_TEXT}")
    year2 = birth_date.year % 100
    ranges = {1800: (500, 749), 1900: (0, 499), 2000: (500, 999)}
    low, high = ranges[(birth_date.year // 100) * 100]
    day = birth_date.day + (40 if d_number else 0)
    while True:
        individual = rng.randint(low, high)
        if birth_date.year >= 2000 and individual < 500:
            continue
        nine = f"{day:02d}{birth_date.month + offset:02d}{year2:02d}{individual:03d}"
        digits = check_digits(nine)
        if digits is not None:
            return nine + digits


#: What may stand between the parts of a national id written in text: whitespace (a tab, a no-break or narrow
#: no-break space too), '.', '-', '+', '/', '_' and the dashes; the same percent-encoded (a query string, where
#: requests writes a space as '+' or %20; a path); and the tab and non-ASCII ones escaped (repr, JSON).
_SEPARATOR = r"""(?: [\s.+/_\u2013\u2014-]
                   | %(?: 20 | 09 | 2[BDEF] | 5F | C2%A0 | E2%80%(?:AF|93|94) )
                   | \\(?: t | xa0 | u(?:00a0|202f|2013|2014) ) )"""
_GAP = rf"(?:{_SEPARATOR}){{1,3}}"  # a short run: "266702 - 71527", "266702%20%2D%2071527"
_ENCODED = r"(?: %[0-9a-f]{2} | \\x[0-9a-f]{2} | \\u[0-9a-f]{4} )"  # one character, percent-encoded or escaped

#: Runs of eleven digits or more in groups joined by short runs of separators (266702 71527, 266702+71527,
#: 26.67.02-71527, 266 702 715 27): where national ids may be. A run begins after no digit or right after an
#: encoded character ("a%2026670271527"); any other encoded character is taken whole, so that its digits begin
#: no run. Linear: separators and digits never overlap, so each start has one way through.
_RUNS = re.compile(rf"""(?P<lead> {_ENCODED} | (?<!\d) ) (?P<run> \d (?: (?:{_GAP})? \d ){{10,}} )
                          | {_ENCODED}""", re.IGNORECASE | re.VERBOSE)
_GAPS = re.compile(f"({_GAP})", re.IGNORECASE | re.VERBOSE)


def mask_in_text(text: str) -> str:
    """Every national id in the text masked as mask() does (its last five digits), separators kept as written:
    "267239 *****", "266 702 *** **". Runs on every log record in production, hence the digit count first."""
    if text.isascii() and sum(map(text.count, "0123456789")) < 11:  # too few digits for an id: most lines
        return text
    return _RUNS.sub(_masked, text)


def _masked(found: re.Match) -> str:
    """The national ids in a run masked. An id is eleven digits in one group or two, whatever stands around
    them (26723916517 5, as people write it), or in more groups that no further group follows (266 702 715 27,
    not 266 702 715 27 5: a piece of a longer grouped number, a phone number or a date and time)."""
    if found.group("run") is None:
        return found.group()
    pieces = _GAPS.split(found.group("run"))  # digit groups at even positions, separator runs between
    sizes = [len(group) for group in pieces[::2]]
    first = last = total = 0  # the groups first..last-1, with `total` digits
    while first < len(sizes):
        while total < 11 and last < len(sizes):
            total, last = total + sizes[last], last + 1
        if total < 11:
            break
        if total == 11 and (last - first <= 2 or last == len(sizes)):
            _hide_last_five(pieces, first, last)
            first, total = last, 0
        else:
            total, first = total - sizes[first], first + 1
    return found.group("lead") + "".join(pieces)


def _hide_last_five(pieces: list[str], first: int, last: int) -> None:
    hidden = 5
    for group in range(last - 1, first - 1, -1):
        digits = pieces[2 * group]
        shown = max(len(digits) - hidden, 0)
        hidden -= len(digits) - shown
        pieces[2 * group] = digits[:shown] + "*" * (len(digits) - shown)


def mask(value: object) -> str:
    """Birth date part only: safe for logs and transcripts."""
    text = str(value or "")
    if len(text) != 11:
        return "*" * min(len(text), 11)
    return text[:6] + "*****"
