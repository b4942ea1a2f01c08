"""Norwegian national ids (SPEC §5): classification, check digits, dates, synthetic ids, masking."""
from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eprom_protocol.messages import ProtocolError
from eprom_protocol.national_id import (
    WEIGHTS_1,
    WEIGHTS_2,
    IdKind,
    Synthetic,
    age_on,
    check_digits,
    classify,
    make_synthetic,
    mask,
    mask_in_text,
    require_orderable,
)

# Copied from SPEC.md §1, so a typo on either side is caught.
FH_TEXT = ("nationalId: FH-nummer is not supported as national ID. The national ID must be either "
           "Norsk fødselsnummer or D-nummer.")
H_TEXT = ("nationalId: H-nummer is not supported as national ID. The national ID must be either "
          "Norsk fødselsnummer or D-nummer.")

GUIDE_PATIENT = "26723916517"  # synthetic (month + 65), born 1939-07-26 like the guide's example patient
GUIDE_SYNTHETIC = "26670271527"  # the guide's synthetic test person (month + 65)


def with_check_digits(nine: str) -> str:
    digits = check_digits(nine)
    assert digits is not None, f"test data {nine} has no valid check digits"
    return nine + digits


def malformed(field: str, why: str) -> str:
    return (f"{field}: not a valid national ID ({why}). The national ID must be either "
            "Norsk fødselsnummer or D-nummer.")


# --- check digits against hand computation ---------------------------------------------

@pytest.mark.parametrize("nine, expected", [
    # 2*3+6*7+7*6+2*1+3*8+9*9+1*4+6*5+5*2 = 241; 241 % 11 = 10; k1 = 11-10 = 1
    # 2*5+6*4+7*3+2*2+3*7+9*6+1*5+6*4+5*3+1*2 = 180; 180 % 11 = 4; k2 = 11-4 = 7
    ("267239165", "17"),
    # 152 % 11 = 9 -> k1 = 2; 136 % 11 = 4 -> k2 = 7
    ("266702715", "27"),
    # D-nummer of GUIDE_PATIENT: 253 % 11 = 0 -> 11 counts as 0; 198 % 11 = 0 -> 0 again
    ("667239165", "00"),
    # sum 0: 11 - 0 = 11 counts as 0, for both digits
    ("000000000", "00"),
    # 1*3 = 3 -> k1 = 8; 1*5 + 8*2 = 21, 21 % 11 = 10 -> k2 = 1
    ("100000000", "81"),
])
def test_check_digits_match_hand_computation(nine, expected):
    assert check_digits(nine) == expected


@pytest.mark.parametrize("nine", [
    "000100000",  # first sum 1*1 = 1: 11 - 1 = 10 is no digit
    "000000014",  # first sum 1*5 + 4*2 = 13 -> k1 = 9; second 1*4 + 4*3 + 9*2 = 34, 34 % 11 = 1 -> 10
])
def test_check_digits_none_when_a_remainder_is_ten(nine):
    assert check_digits(nine) is None


def test_weights_are_the_documented_ones():
    assert WEIGHTS_1 == (3, 7, 6, 1, 8, 9, 4, 5, 2)
    assert WEIGHTS_2 == (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


# --- the reference ids ---------------------------------------------------------------

def test_guide_patient_is_a_synthetic_fodselsnummer_born_1939_07_26():
    nid = classify(GUIDE_PATIENT)
    assert nid.kind is IdKind.FODSELSNUMMER
    assert nid.synthetic is Synthetic.TEST  # 26 72-65=07 39, individual 165 (000-499): 1939
    assert nid.birth_date == date(1939, 7, 26)
    assert nid.orderable
    assert require_orderable(GUIDE_PATIENT) == nid


def test_guide_synthetic_person_is_month_plus_65():
    nid = classify(GUIDE_SYNTHETIC)
    assert nid.kind is IdKind.FODSELSNUMMER
    assert nid.synthetic is Synthetic.TEST
    # 26 67-65=02 02, individual 715 (500-999 with year <= 39): 2002
    assert nid.birth_date == date(2002, 2, 26)
    assert require_orderable(GUIDE_SYNTHETIC).orderable


def test_d_nummer_is_day_plus_40():
    nid = require_orderable("66723916500")  # GUIDE_PATIENT's day + 40
    assert nid.kind is IdKind.D_NUMMER
    assert nid.synthetic is Synthetic.TEST
    assert nid.birth_date == date(1939, 7, 26)
    assert nid.orderable


def test_synthetic_month_plus_80():
    value = with_check_digits("268739416")  # 26, 07+80, 39, 416
    nid = require_orderable(value)
    assert nid.kind is IdKind.FODSELSNUMMER
    assert nid.synthetic is Synthetic.TAX
    assert nid.birth_date == date(1939, 7, 26)


def test_synthetic_d_nummer():
    value = with_check_digits("667239416")  # day+40, month+65
    nid = require_orderable(value)
    assert (nid.kind, nid.synthetic, nid.birth_date) == (IdKind.D_NUMMER, Synthetic.TEST, date(1939, 7, 26))


# --- H-nummer and FH-nummer: the documented texts --------------------------------------

def test_h_nummer_is_month_plus_40_and_rejected_with_the_spec_text():
    value = with_check_digits("264739416")
    assert value == "26473941634"
    nid = classify(value)
    assert nid.kind is IdKind.H_NUMMER
    assert nid.birth_date == date(1939, 7, 26)
    assert not nid.orderable
    with pytest.raises(ProtocolError) as err:
        require_orderable(value)
    assert err.value.message == H_TEXT
    assert err.value.status == 400


@pytest.mark.parametrize("value", ["81234567890", "91234567890", "80000000000", "99999999999"])
def test_fh_nummer_first_digit_8_or_9_rejected_with_the_spec_text(value):
    assert classify(value).kind is IdKind.FH_NUMMER
    assert not classify(value).orderable
    with pytest.raises(ProtocolError) as err:
        require_orderable(value)
    assert err.value.message == FH_TEXT
    assert err.value.status == 400


@pytest.mark.parametrize("value, text", [("81234567890", FH_TEXT), (with_check_digits("264739416"), H_TEXT)])
def test_the_documented_text_names_the_field_that_holds_the_id(value, text):
    """It said nationalId for an FH- or H-nummer in onBehalfOfNationalId too (ePROM's text is an interpolated
    string, $"nationalId: ...": the field goes in front)."""
    with pytest.raises(ProtocolError) as err:
        require_orderable(value, field="onBehalfOfNationalId")
    assert err.value.message == text.replace("nationalId: ", "onBehalfOfNationalId: ")


# --- malformed ids: our own 400 naming the field ---------------------------------------

@pytest.mark.parametrize("value", ["2672391651", "267239165170", "", "2672391651 ", " 26723916517"])
def test_wrong_length(value):
    with pytest.raises(ProtocolError) as err:
        classify(value)
    assert err.value.status == 400
    assert err.value.message == malformed("nationalId", "it must be exactly 11 digits")


@pytest.mark.parametrize("value", ["2672391651a", "26-72-39165", "2672391651\n", "267239 6517"])
def test_non_digits(value):
    with pytest.raises(ProtocolError) as err:
        classify(value)
    assert err.value.message == malformed("nationalId", "it must be exactly 11 digits")


@pytest.mark.parametrize("value", [
    "²6723916517",  # a superscript two: str.isdigit() says yes, int() says no
    "２６７２３９１６５１７",  # full-width digits
    "٢٦٧٢٣٩١٦٥١٧",  # Arabic-Indic digits
])
def test_non_ascii_digits_are_not_digits(value):
    with pytest.raises(ProtocolError) as err:
        classify(value)
    assert err.value.message == malformed("nationalId", "it must be exactly 11 digits")


@pytest.mark.parametrize("value", [26723916517, None, ["26723916517"], 2.6e10])
def test_not_a_string(value):
    with pytest.raises(ProtocolError) as err:
        require_orderable(value, field="onBehalfOfNationalId")
    assert err.value.message == malformed("onBehalfOfNationalId", "it must be a string of 11 digits")


@pytest.mark.parametrize("value", ["26723916518", "26723916507", "26723916500", "26670271528"])
def test_bad_check_digits(value):
    with pytest.raises(ProtocolError) as err:
        classify(value)
    assert err.value.status == 400
    assert err.value.message == malformed("nationalId", "the check digits are wrong")


def test_field_name_appears_in_our_own_texts():
    with pytest.raises(ProtocolError) as err:
        require_orderable("26723916518", field="onBehalfOfNationalId")
    assert err.value.message.startswith("onBehalfOfNationalId: ")


@pytest.mark.parametrize("nine, why", [
    ("310239416", "31 February"),
    ("300239416", "30 February"),
    ("000739416", "day 0"),
    ("260039416", "month 0"),
    ("261339400", "month 13"),
    ("263939416", "month 39"),
    ("290200416", "29 February 1900 (individual 000-499: 1900, not a leap year)"),
    ("010150800", "individual 750-899 with year 40-99 has no century"),
    ("010145600", "individual 500-749 with year 40-53 has no century"),
    ("720739400", "D-nummer day 72 - 40 = 32"),
    ("267839416", "month 78: 13 after the +65 offset"),
    ("269339400", "month 93: 13 after the +80 offset"),
    ("266039416", "month 60: not an H-nummer (41-52) nor synthetic (66-77, 81-92)"),
    ("265339416", "month 53: just above the H-nummer months"),
    ("315139416", "an H-nummer (month + 40) of 31 November"),
    ("304239416", "an H-nummer (month + 40) of 30 February"),
])
def test_impossible_dates(nine, why):
    value = with_check_digits(nine)
    with pytest.raises(ProtocolError) as err:
        classify(value)
    assert err.value.message == malformed("nationalId", "the birth date is not a real date"), why


@pytest.mark.parametrize("nine, born", [
    ("290200500", date(2000, 2, 29)),  # 500-999 with year 00-39: 2000, a leap year
    ("010160500", date(1860, 1, 1)),  # 500-749 with year 54-99: 1800s
    ("010150900", date(1950, 1, 1)),  # 900-999 with year 40-99: 1900s
    ("010120900", date(2020, 1, 1)),  # 900-999 with year 00-39: 2000s
    ("010199401", date(1999, 1, 1)),  # 000-499: 1900s
    ("311299001", date(1999, 12, 31)),
])
def test_century_from_individual_number(nine, born):
    assert classify(with_check_digits(nine)).birth_date == born


def test_age_on():
    nid = classify(GUIDE_PATIENT)
    assert age_on(nid, date(2025, 7, 25)) == 85
    assert age_on(nid, date(2025, 7, 26)) == 86
    assert age_on(classify("81234567890"), date(2025, 1, 1)) is None


# --- single-digit errors ---------------------------------------------------------------

def test_mod11_weights_detect_every_single_digit_change():
    """Why the property below can hold: changing digit i by d (1..9 either way) changes the first
    weighted sum by w_i*d, which 11 (prime) never divides since every w_i and d is in 1..10; the
    first check digit itself has implicit weight 1, and the second is compared directly."""
    for w in WEIGHTS_1 + (1,):
        for d in range(1, 10):
            assert (w * d) % 11 != 0


def _substitutions(value: str):
    for pos in range(11):
        for digit in "0123456789":
            if digit != value[pos]:
                yield pos, digit, value[:pos] + digit + value[pos + 1:]


def _assert_every_substitution_caught(value: str) -> None:
    original = classify(value)
    for pos, digit, changed in _substitutions(value):
        if pos == 0 and digit in "89":
            # Not invalid but a different meaning: an FH-nummer, which is recognised by its first
            # digit before check digits are looked at. It is still refused for ordering.
            assert classify(changed).kind is IdKind.FH_NUMMER != original.kind
        else:
            with pytest.raises(ProtocolError, match="check digits are wrong"):
                classify(changed)
        with pytest.raises(ProtocolError):
            require_orderable(changed)


@pytest.mark.parametrize("value", [GUIDE_PATIENT, GUIDE_SYNTHETIC, "66723916500"])
def test_every_single_digit_substitution_of_reference_ids_is_caught(value):
    _assert_every_substitution_caught(value)


@st.composite
def valid_ids(draw):
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2039, 12, 31)))
    if born.year < 2000:
        individual = draw(st.integers(0, 499) | st.integers(900, 999)) if born.year >= 1940 \
            else draw(st.integers(0, 499))
    else:
        individual = draw(st.integers(500, 999))
    day = born.day + draw(st.sampled_from([0, 40]))
    month = born.month + draw(st.sampled_from([0, 65, 80]))
    nine = f"{day:02d}{month:02d}{born.year % 100:02d}{individual:03d}"
    digits = check_digits(nine)
    assume(digits is not None)
    return nine + digits


@given(valid_ids())
def test_generated_ids_are_valid_and_orderable(value):
    assert require_orderable(value).orderable


@given(valid_ids())
def test_the_month_tells_real_ids_from_synthetic_ones(value):
    """Month 01-12 is a real id, 66-77 the test population's, 81-92 the tax authority's; drawn ids, since the
    reference ids above are all synthetic (no real person's id in the tests)."""
    month = int(value[2:4])
    expected = Synthetic.NO if month <= 12 else Synthetic.TEST if month <= 77 else Synthetic.TAX
    assert classify(value).synthetic is expected


@given(valid_ids())
@settings(max_examples=60)
def test_every_single_digit_substitution_is_caught(value):
    _assert_every_substitution_caught(value)


# --- synthetic ids ---------------------------------------------------------------------

@given(
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)),
    offset=st.sampled_from([65, 80]),
    d_number=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_make_synthetic_is_classified_as_synthetic_with_the_same_birth_date(born, offset, d_number, seed):
    value = make_synthetic(random.Random(seed), born, offset=offset, d_number=d_number)
    assert len(value) == 11 and value.isdigit()
    nid = require_orderable(value)
    assert nid.synthetic is (Synthetic.TEST if offset == 65 else Synthetic.TAX)
    assert nid.kind is (IdKind.D_NUMMER if d_number else IdKind.FODSELSNUMMER)
    assert nid.birth_date == born


def test_make_synthetic_is_deterministic_for_a_seed():
    a = make_synthetic(random.Random(7), date(1980, 5, 17))
    b = make_synthetic(random.Random(7), date(1980, 5, 17))
    assert a == b
    assert a[:6] == "177080"  # 17, 05+65, 80


def test_make_synthetic_default_is_the_health_sector_test_population():
    value = make_synthetic(random.Random(1), date(1955, 12, 1))
    assert classify(value).synthetic is Synthetic.TEST
    assert value[2:4] == "77"


# --- masking ---------------------------------------------------------------------------

@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_mask_keeps_the_birth_date_and_hides_the_last_five(value):
    masked = mask(value)
    assert masked == value[:6] + "*****"


@given(st.text().filter(lambda t: len(t) != 11))
def test_mask_of_other_lengths_reveals_nothing(value):
    masked = mask(value)
    assert set(masked) <= {"*"}
    assert len(masked) == min(len(value), 11)


def test_mask_examples():
    assert mask(GUIDE_PATIENT) == "267239*****"
    assert "16517" not in mask(GUIDE_PATIENT)
    assert mask(None) == ""
    assert mask("") == ""
    assert mask(26723916517) == "267239*****"


# --- nothing but ProtocolError, whatever the input ---------------------------------------

@given(st.text(max_size=13) | st.text(alphabet=st.characters(categories=["Nd"]), min_size=11, max_size=11))
def test_classify_raises_only_protocol_errors(value):
    try:
        nid = classify(value)
    except ProtocolError as err:
        assert err.status == 400
        assert err.message.startswith("nationalId: ")
    else:
        assert nid.value == value
        assert value.isascii() and value.isdigit() and len(value) == 11


@pytest.mark.parametrize("text, expected", [
    ("id 26723916517 here", "id 267239***** here"),
    ("id 267239 16517 here", "id 267239 ***** here"),
    ("267239-16517", "267239-*****"),
    ("(267239.16517)", "(267239.*****)"),
    ("twelve 267239165170 digits", "twelve 267239165170 digits"),  # part of a longer number: not an id
    ("2025-01-06T08:00:00Z", "2025-01-06T08:00:00Z"),
    ("1bc5f9f0-2607-49eb-94f0-6af955bbd79a", "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"),
    ("267239 1651", "267239 1651"),
])
def test_ids_inside_text_are_masked_however_they_are_written(text, expected):
    assert mask_in_text(text) == expected


@pytest.mark.parametrize("year", [1853, 1700, 2040, 9954])
def test_make_synthetic_refuses_a_birth_year_no_id_can_tell(year):
    """Years 1800-1853 came out as ids of 2000-2053 births, later ones a KeyError (a 500 in the fake ePROM)."""
    with pytest.raises(ValueError, match=f"no national id tells a birth in {year}: national ids tell births from 1854 to 2039 only"):
        make_synthetic(random.Random(1), date(year, 5, 17))
    for edge in (date(1854, 1, 1), date(2039, 12, 31)):
        assert classify(make_synthetic(random.Random(1), edge)).birth_date == edge
