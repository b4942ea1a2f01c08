"""Norwegian national ids: classification, check digits, birth dates, synthetic ids and masking (SPEC §5)."""
from __future__ import annotations

import random
import re
import string
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
_SPACE = r"""(?: [\s+] | %(?: 20 | 09 | C2%A0 | E2%80%AF ) | \\(?: t | xa0 | u(?:00a0|202f) ) )"""
_FLAGS = re.IGNORECASE | re.VERBOSE
#: Eleven digits or more in groups joined by short runs of separators (at most three: "266702 - 71527",
#: "266702%20%2D%2071527"): only there may an id be, and most digits in a log line are in shorter runs.
_RUN = re.compile(rf"\d (?: (?:{_SEPARATOR}){{0,3}} \d ){{10,}}", _FLAGS)
_GAP = re.compile(rf"((?:{_SEPARATOR}){{1,3}})", _FLAGS)
_ONE_SEPARATOR = re.compile(rf"{_SEPARATOR}\Z", _FLAGS)
_ONE_SPACE = re.compile(rf"{_SPACE}\Z", _FLAGS)
_NOT_DIGITS = re.compile(r"\D+")
#: The shapes an id is written in: (digits per group, what may join them, whether the run must end with it).
#: Whole or 6 + 5 as people write it, wherever it stands (26723916517 5, 267239 16517-2); the birth date's
#: parts apart (26.67.02 71527) or in threes (266 702 715 27) only where the run ends, with one separator (a
#: space for threes): otherwise a date and time, an IP address or a piece of a longer grouped number.
_SHAPES = (((11,), None, False), ((6, 5), _GAP, False),
           ((2, 2, 2, 5), _ONE_SEPARATOR, True), ((3, 3, 3, 2), _ONE_SPACE, True))
#: An id as written most often, wherever it stands: whole, or 6 + 5 with one space, dash or dot. Masked in a
#: pass of its own, as it always was, also where the runs above read its first digits as part of an escape
#: (84%096919-67597: "%09" is a tab there).
_PLAIN_ID = re.compile(r"(?<!\d)(\d{6}[ .-]?)\d{5}(?!\d)")
#: Escapes (and how many hex digits they take) whose digits may run into an id that follows: "a%2026670271527",
#: "\\u00a026670271527".
_ESCAPES = (("%", 2), ("\\x", 2), ("\\u", 4))


def mask_in_text(text: str) -> str:
    """Every national id in the text masked as mask() does (its last five digits), separators kept as written:
    "267239 *****", "266702+*****", "266 702 *** **". Runs on every log record in production, hence the digit
    count first; linear in the text."""
    if sum(map(text.count, "0123456789")) < 11 and (text.isascii() or len(_NOT_DIGITS.sub("", text)) < 11):
        return text  # too few digits for an id: most lines
    masked = _RUN.sub(lambda run: _masked(run, text), text)
    return _PLAIN_ID.sub(lambda found: found.group(1) + "*****", masked)


def _masked(run: re.Match, text: str) -> str:
    """The run with the national ids in it masked."""
    pieces = _GAP.split(run.group())  # digit groups at even positions, separator runs between
    groups, head = len(pieces) // 2 + 1, ""
    cut = _escaped_digits(text[max(run.start() - 5, 0):run.start()])
    if cut and len(pieces[0]) > cut and not _shape_at(pieces, 0, groups):
        trimmed = [pieces[0][cut:], *pieces[1:]]
        if _shape_at(trimmed, 0, groups):
            head, pieces = pieces[0][:cut], trimmed
    index = 0
    while index < groups:
        size = _shape_at(pieces, index, groups)
        if size:
            _hide_last_five(pieces, index, index + size)
        index += size or 1
    return head + "".join(pieces)


def _escaped_digits(before: str) -> int:
    """How many of a run's first characters may still belong to an escape that `before` ends inside."""
    for escape, length in _ESCAPES:
        at = before.rfind(escape)
        written = before[at + len(escape):] if at >= 0 else None
        if written is not None and len(written) < length and all(c in string.hexdigits for c in written):
            return length - len(written)
    return 0


def _shape_at(pieces: list[str], index: int, groups: int) -> int:
    """How many groups an id written from group `index` on takes (0: none starts there)."""
    for sizes, joiner, ends_run in _SHAPES:
        last = index + len(sizes)
        if last > groups or (ends_run and last != groups):
            continue
        if all(len(pieces[2 * (index + k)]) == size for k, size in enumerate(sizes)) and all(
                joiner.match(pieces[2 * (index + k) + 1]) for k in range(len(sizes) - 1)):
            return len(sizes)
    return 0


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
