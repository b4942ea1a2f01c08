"""National ids inside free text (logs, transcripts, error texts): masked however they are written, with any
separator people, URLs or repr() put between their parts; numbers that are not ids left alone."""
from __future__ import annotations

import json
import random
import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eprom_protocol.national_id import make_synthetic, mask_in_text

#: Every way a separator may be written: itself, percent-encoded (either case), escaped by repr() or JSON.
SEPARATORS = [" ", "\t", "\u00a0", "\u202f", ".", "-", "+", "/", "_", "\u2013", "\u2014",
              "%20", "%09", "%C2%A0", "%E2%80%AF", "%2E", "%2D", "%2B", "%2F", "%5F", "%E2%80%93", "%E2%80%94",
              "\\t", "\\xa0", "\\u00a0", "\\u202f", "\\u2013", "\\u2014"]


@pytest.mark.parametrize("text, expected", [
    ("GET /healthz?nationalId=266702+71527 HTTP/1.1", "GET /healthz?nationalId=266702+***** HTTP/1.1"),
    ("/api/ExternalDocument/266702%2071527", "/api/ExternalDocument/266702%20*****"),
    ("266702%c2%a071527", "266702%c2%a0*****"),
    ("266702  71527", "266702  *****"),
    ("266702 - 71527", "266702 - *****"),
    ("266702\u00a071527", "266702\u00a0*****"),
    ("266702\u202f71527", "266702\u202f*****"),
    ("266702\u201371527 and 266702\u201471527", "266702\u2013***** and 266702\u2014*****"),
    ("266702/71527 266702_71527 266702\t71527", "266702/***** 266702_***** 266702\t*****"),
    ("26.67.02 71527", "26.67.02 *****"),
    ("26.67.02-71527", "26.67.02-*****"),
    ("26 67 02 71527", "26 67 02 *****"),
    ("266 702 715 27", "266 702 *** **"),
    (repr("266702\t71527"), "'266702\\t*****'"),
    (json.dumps("266702\u00a071527"), '"266702\\u00a0*****"'),
    ("5 266 702 715 27", "5 266 702 *** **"),  # what comes before does not make it a longer number
    ("?q=patient%2026670271527", "?q=patient%20266702*****"),  # after an encoded space, not a longer number
])
def test_ids_written_with_other_separators_or_in_more_groups_are_masked(text, expected):
    assert mask_in_text(text) == expected


@pytest.mark.parametrize("text, expected", [
    # no ids: left alone
    ("2025-01-06 08:00:00", "2025-01-06 08:00:00"),
    ("06.01.2025 08.00.00", "06.01.2025 08.00.00"),
    ("2025-01-06T08:00:00Z 1bc5f9f0-2607-49eb-94f0-6af955bbd79a",
     "2025-01-06T08:00:00Z 1bc5f9f0-2607-49eb-94f0-6af955bbd79a"),
    ("266 702 715 27 5", "266 702 715 27 5"),  # three groups or more, going on: a piece of a longer number
    ("26.67.02 71527-0", "26.67.02 71527-0"),
    ("2667027152 and 266 702 715 2", "2667027152 and 266 702 715 2"),  # ten digits
    ("266702    71527", "266702    71527"),  # four separators: not a short run
    ("twelve 266702715270 digits", "twelve 266702715270 digits"),
    # masked before and still
    ("26670271527 26723916517", "266702***** 267239*****"),
    ("x26670271527y", "x266702*****y"),
    ("26723916517 5", "267239***** 5"),  # whole or in two groups: whatever follows
    ("267239 16517-2", "267239 *****-2"),
    ("at 2025-01-06 08:00:00,123 26670271527", "at 2025-01-06 08:00:00,123 266702*****"),
])
def test_what_is_no_id_and_what_was_masked_before_stay_so_beside_an_id_in_a_new_form(text, expected):
    assert mask_in_text(f"{text}; 266702+71527") == f"{expected}; 266702+*****"


def without_separators(text: str) -> str:
    for separator in sorted(SEPARATORS, key=len, reverse=True):
        text = re.sub(re.escape(separator), "", text, flags=re.IGNORECASE)
    return text


#: Separators that stand for a space, which alone may join an id written in threes (266 702 715 27).
SPACES = [" ", "\t", "\u00a0", "\u202f", "+", "%20", "%09", "%C2%A0", "%E2%80%AF", "\\t", "\\xa0", "\\u00a0",
          "\\u202f"]
#: How an id is written: the digits per group, and whether a group may be joined by up to three separators.
SHAPES = {"whole": (11,), "six and five": (6, 5), "date apart": (2, 2, 2, 5), "threes": (3, 3, 3, 2)}


@given(
    seed=st.integers(0, 2**32),
    born=st.dates(date(1854, 1, 1), date(2039, 12, 31)),
    d_number=st.booleans(),
    shape=st.sampled_from(sorted(SHAPES)),
    joins=st.lists(st.lists(st.tuples(st.sampled_from(SEPARATORS), st.booleans()), min_size=1, max_size=3),
                   min_size=3, max_size=3),
    spaces=st.lists(st.tuples(st.sampled_from(SPACES), st.booleans()), min_size=3, max_size=3),
    before=st.sampled_from(["", "id ", "nationalId=", "/api/ExternalDocument/", "(", "x", "q=a%20", '"\\u00a0', "5 ",
                            "'%", "LIKE '%"]),
    after=st.sampled_from(["", " here", ")", "&page=2", " HTTP/1.1", "y", "%20and", " - x", "%'"]),
)
def test_a_synthetic_id_written_in_any_of_its_shapes_with_any_separators_is_masked(seed, born, d_number, shape, joins,
                                                                                   spaces, before, after):
    """Six and five with up to three separators between; the date's parts apart with one separator each; threes
    with one space each. Percent-encoded separators in either case."""
    nid = make_synthetic(random.Random(seed), born, d_number=d_number)
    sizes = SHAPES[shape]
    bounds = [sum(sizes[:k]) for k in range(len(sizes) + 1)]
    if shape == "six and five":
        gaps = ["".join(s.lower() if lower else s for s, lower in joins[0])]
    elif shape == "threes":
        gaps = [s.lower() if lower else s for s, lower in spaces]
    else:
        gaps = [s.lower() if lower else s for s, lower in (join[0] for join in joins)]
    hidden = nid[:6] + "*****"

    def written(value: str) -> str:
        parts = [value[a:b] for a, b in zip(bounds, bounds[1:])]
        return before + parts[0] + "".join(gap + part for gap, part in zip(gaps, parts[1:])) + after

    masked = mask_in_text(written(nid))
    assert masked == written(hidden)
    assert nid not in without_separators(masked)


@pytest.mark.parametrize("text", [
    "connect to 192.168.100.20:8080 failed",  # an IP address in threes, with dots
    "192.168.100.20 - - [04/Dec/2026:20:10:10 +0000]",
    "took 1718371234.5 s", "78988357.783", "20240614-123", "12-345-678-90-1",
    "f3d09401-f8f3-4573-8123-45f37b0da111", "99065018-338d-4e8e-bf24-8c64e4e76ba8",
    "lines 1-2-3-4-5-6-7-8-9-10-11",
])
def test_numbers_that_only_add_up_to_eleven_digits_are_left_alone(text):
    """Any eleven digits in any groups would take IP addresses, uuids and times for ids."""
    assert mask_in_text(text) == text


@pytest.mark.parametrize("text, expected", [
    ("26670 266702 71527", "26670 266702 *****"),  # five digits before a 6 + 5 id: the id is still the id
    ("10000\t266702 71527", "10000\t266702 *****"),
    ("WHERE nid LIKE '%26670271527%'", "WHERE nid LIKE '%266702*****%'"),  # a literal % before: no escape
    ("100%26670271527", "100%266702*****"),
    ("?\\x266702-71527", "?\\x266702-*****"),
    ("84%096919-67597", "84%096919-*****"),  # "%09" could be a tab between 84 and 6919: an id all the same
])
def test_ids_after_other_digits_or_a_percent_sign_are_masked(text, expected):
    assert mask_in_text(text) == expected


def test_a_megabyte_of_digits_and_separators_is_masked_in_one_pass():
    """Linear, whatever the text: every start has one way through, and a long run is looked at once."""
    for unit in ("1 2-3.4 5 6 7 8 9 0 1  ", "1 - ", "12 %20", "1%2", "266 702 715 27 ", "1234567890 "):
        text = (unit * (1_000_000 // len(unit) + 1))[:1_000_000] + "; 266702+71527"
        masked = mask_in_text(text)
        assert len(masked) == len(text) and masked.endswith("; 266702+*****")
