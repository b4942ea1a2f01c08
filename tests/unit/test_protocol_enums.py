"""The ePROM enums (SPEC §1 and §2): exact numbers and names, parsing from name or number."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eprom_protocol.enums import (
    RETURNED_FORM_STATUSES,
    STATUS_CALLBACK_STATUSES,
    DistributionRule,
    FilledOutByActType,
    FormOrderEventLogType,
    FormOrderStatus,
    FormOrderStatusErrorCode,
    NotificationChannel,
    SentStatus,
)

# Copied from SPEC.md §1 "Enums".
SPEC_ENUMS = {
    DistributionRule: "0 Basic, 1 AllowUnsecure, 2 NoDistribution, 3 BasicOrPaper, "
                      "4 AllowUnsecureOrPaper, 5 PaperOnly, 6 HelsenorgeOnly, "
                      "7 DigitalMailboxOnly, 8 UnsecureOnly",
    NotificationChannel: "0 None, 1 Helsenorge, 2 DigitalMailbox, 3 Unsecure, 4 PhysicalMailbox",
    FormOrderStatus: "0 Completed, 1 Expired, 2 Ordered, 3 Error, 4 PhysicalMailReturned, 5 DigipostDelivered",
    FormOrderStatusErrorCode: "0 None, 1 PatientUnreachable, 2 SikkerDigitalPostError",
    SentStatus: "0 Sent, 1 Error",
}
# SPEC lists these by name only (§1 and §2); the numbers are the code's choice: declaration order from 0.
SPEC_NAMES_ONLY = {
    FormOrderEventLogType: "FormOpened, QuestionAccessed, SigningStarted, SigningCancelled, "
                           "SigningError, SigningCompleted, FormDelivered",
    FilledOutByActType: "Ukjent | SegSelv | Foreldrerepresentasjon | Fullmakt",
}
ALL_ENUMS = list(SPEC_ENUMS) + list(SPEC_NAMES_ONLY)


def _spec_pairs(cls):
    if cls in SPEC_ENUMS:
        return [(int(n), name) for n, name in (item.split() for item in SPEC_ENUMS[cls].split(", "))]
    names = [n.strip() for n in SPEC_NAMES_ONLY[cls].replace("|", ",").split(",")]
    return list(enumerate(names))


@pytest.mark.parametrize("cls", ALL_ENUMS, ids=lambda c: c.__name__)
def test_exact_numbers_and_names(cls):
    assert [(m.value, m.wire_name) for m in cls] == _spec_pairs(cls)


@pytest.mark.parametrize("cls", [NotificationChannel, FormOrderStatusErrorCode], ids=lambda c: c.__name__)
def test_none_members_are_named_none_on_the_wire(cls):
    member = cls.parse("None")
    assert member.value == 0
    assert member.wire_name == "None"
    assert member.name == "None_"
    assert cls.parse("none") is member
    assert cls.parse(0) is member
    assert "None" in cls.wire_values()
    assert "None_" not in cls.wire_values()


@pytest.mark.parametrize("cls", [NotificationChannel, FormOrderStatusErrorCode], ids=lambda c: c.__name__)
def test_python_spelling_none_underscore_is_not_a_wire_name(cls):
    with pytest.raises(ValueError):
        cls.parse("None_")


@pytest.mark.parametrize("cls", ALL_ENUMS, ids=lambda c: c.__name__)
def test_parse_every_name_in_any_case_and_every_number(cls):
    for member in cls:
        name = member.wire_name
        assert cls.parse(name) is member
        assert cls.parse(name.lower()) is member
        assert cls.parse(name.upper()) is member
        assert cls.parse(name.swapcase()) is member
        assert cls.parse(f"  {name} ") is member
        assert cls.parse(member.value) is member
        assert cls.parse(str(member.value)) is member
        assert cls.parse(f" {member.value} ") is member
        assert cls.parse(member) is member
        assert cls.is_valid(name) and cls.is_valid(member.value)


def test_parse_examples():
    assert DistributionRule.parse("paperonly") is DistributionRule.PaperOnly
    assert DistributionRule.parse("5") is DistributionRule.PaperOnly
    assert NotificationChannel.parse(1) is NotificationChannel.Helsenorge
    assert FormOrderStatus.parse("ORDERED") is FormOrderStatus.Ordered
    assert SentStatus.parse("1") is SentStatus.Error


def _assert_rejected(cls, value):
    with pytest.raises(ValueError) as err:
        cls.parse(value)
    message = str(err.value)
    assert cls.__name__ in message
    for member in cls:
        assert f"{member.value} {member.wire_name}" in message
    assert not cls.is_valid(value)
    return message


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("cls", ALL_ENUMS, ids=lambda c: c.__name__)
def test_rejects_booleans(cls, value):
    _assert_rejected(cls, value)


@pytest.mark.parametrize("value", ["Fax", "", "   ", "Basic Or Paper", "Helse norge", "0x1", "1.0", "+1", "one"])
def test_rejects_unknown_names(value):
    _assert_rejected(NotificationChannel, value)


@pytest.mark.parametrize("cls", ALL_ENUMS, ids=lambda c: c.__name__)
def test_rejects_out_of_range_numbers(cls):
    top = max(m.value for m in cls)
    for value in (-1, top + 1, 10**20, str(top + 1), "-1"):
        _assert_rejected(cls, value)


@pytest.mark.parametrize("value", [None, 1.5, 1.0, [1], {"name": "Basic"}, b"Basic"])
def test_rejects_other_types(value):
    _assert_rejected(DistributionRule, value)


def test_rejection_message_lists_the_allowed_values():
    message = _assert_rejected(SentStatus, "Lost")
    assert message == "'Lost' is not a valid SentStatus; expected one of: 0 Sent, 1 Error"


@pytest.mark.parametrize("value, spelt", [(None, "null"), (True, "true"), (False, "false"), (1.5, "1.5"),
                                          ({"name": "Basic"}, '{"name": "Basic"}'), ("Lost", "'Lost'")])
def test_the_rejected_value_is_spelt_as_in_json(value, spelt):
    """It said None and True, Python's words for what the client wrote as null and true."""
    assert _assert_rejected(SentStatus, value).startswith(f"{spelt} is not a valid SentStatus")


@pytest.mark.parametrize("value", ["²", "١", "２", "1²", "--1", "-"])
def test_rejects_non_ascii_digits_and_odd_signs_with_the_allowed_values(value):
    _assert_rejected(SentStatus, value)


@given(st.text(max_size=25))
def test_parse_any_text_either_matches_or_lists_the_allowed_values(value):
    try:
        member = NotificationChannel.parse(value)
    except ValueError as err:
        assert "expected one of: 0 None, 1 Helsenorge, 2 DigitalMailbox, 3 Unsecure, 4 PhysicalMailbox" in str(err)
    else:
        text = value.strip()
        assert text.lower() == member.wire_name.lower() or (text.isascii() and int(text) == member.value)


@pytest.mark.parametrize("cls", ALL_ENUMS, ids=lambda c: c.__name__)
def test_wire_values_are_names_then_numbers(cls):
    assert cls.wire_values() == [m.wire_name for m in cls] + [m.value for m in cls]


def test_status_groups_split_every_status_once():
    assert STATUS_CALLBACK_STATUSES | RETURNED_FORM_STATUSES == set(FormOrderStatus)
    assert not STATUS_CALLBACK_STATUSES & RETURNED_FORM_STATUSES
    assert RETURNED_FORM_STATUSES == {FormOrderStatus.Completed, FormOrderStatus.Expired}
