"""The patient contract: PATIENT_SCHEMA and the fake ePROM's parser agree on what a patient is; defaults are
synthetic and seeded; every bad field gets a 400 that names it. No server."""
from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from jsonschema import Draft202012Validator

from eprom_protocol.enums import FilledOutByActType, NotificationChannel as Channel
from eprom_protocol.messages import ProtocolError
from eprom_protocol.national_id import Synthetic, classify
from fake_eprom.forms import RAND_12_ID, default_catalog
from fake_eprom.patient_schema import BEHAVIOURS, PATIENT_SCHEMA
from fake_eprom.patients import Population
from fake_eprom.synthetic import FAKER_LOCALE, PersonFactory, birth_date_for_age

NOW = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
TODAY = NOW.date()
GUIDE_PATIENT = "26723916517"  # born 26.07.1939, synthetic month+65 (like the guide's example patient)
TEST_PERSON = "26670271527"  # born 26.02.2002, synthetic month+65
UNBORN = "01713080396"  # born 01.06.2030, synthetic month+65: after the clock's today
SIGNED_FORM = "4de7d33a-334f-41de-b2ed-9451bd942280"
OWNED = {f.id: replace(f, owner="registry") if f.id == SIGNED_FORM else f for f in default_catalog()}
VALIDATOR = Draft202012Validator(PATIENT_SCHEMA)


def population(seed: int = 1, mode: str = "open") -> Population:
    return Population(mode, random.Random(f"{seed}:ids"), PersonFactory(seed), NOW)


def parse(body: dict, seed: int = 1):
    return population(seed).parse(body, NOW, lambda form_id: OWNED.get(form_id.lower()))


def refused(body: dict) -> str:
    with pytest.raises(ProtocolError) as err:
        parse(body)
    assert err.value.status == 400
    return err.value.message


def test_the_schema_is_valid_json_schema():
    Draft202012Validator.check_schema(PATIENT_SCHEMA)


# --- defaults: synthetic people only ---------------------------------------------------------
def test_a_patient_described_by_nothing_is_a_synthetic_45_year_old_reached_everywhere():
    patient = parse({})
    nid = classify(patient.national_id)
    assert nid.synthetic is Synthetic.TEST and nid.birth_date == patient.birth_date
    assert patient.age(TODAY) == 45
    assert patient.channels(TODAY) == {Channel.Helsenorge, Channel.DigitalMailbox, Channel.Unsecure,
                                       Channel.PhysicalMailbox}
    assert patient.behaviour == "never" and patient.answer is None
    profile = patient.profile
    assert profile.contact_register.last_updated == TODAY - timedelta(days=30)
    assert profile.contact_register.email.endswith(("example.org", "example.com", "example.net"))
    assert profile.contact_register.mobile[0] in "49" and len(profile.contact_register.mobile) == 8
    assert profile.postal_address.full_name == patient.name
    assert len(profile.postal_address.postal_code) == 4


def test_names_and_addresses_are_seeded_per_person_not_per_call_order():
    one, two = population(5), population(5)
    a = one.parse({"nationalId": GUIDE_PATIENT}, NOW, OWNED.get)
    one.parse({"nationalId": TEST_PERSON}, NOW, OWNED.get)
    b = two.parse({"nationalId": TEST_PERSON}, NOW, OWNED.get)
    c = two.parse({"nationalId": GUIDE_PATIENT}, NOW, OWNED.get)
    assert (a.name, a.profile) == (c.name, c.profile)
    assert b.name != a.name or b.profile != a.profile
    assert population(6).parse({"nationalId": GUIDE_PATIENT}, NOW, OWNED.get).name != a.name or \
        population(7).parse({"nationalId": GUIDE_PATIENT}, NOW, OWNED.get).name != a.name
    assert FAKER_LOCALE == "no_NO"


def test_the_default_patient_of_an_open_population_is_the_same_generated_person():
    pop = population(3)
    assert pop.lookup(GUIDE_PATIENT, TODAY).name == pop.default_patient(GUIDE_PATIENT).name
    assert pop.lookup(GUIDE_PATIENT, TODAY).added_at is None
    assert population(3, "strict").lookup(GUIDE_PATIENT, TODAY) is None


def test_an_id_born_after_today_is_nobody_in_the_open_population_until_that_day():
    assert population().lookup(UNBORN, TODAY) is None
    assert population().lookup(UNBORN, date(2030, 6, 1)).birth_date == date(2030, 6, 1)


@pytest.mark.parametrize("age", [0, 1, 15, 16, 45, 99, 120])
def test_a_synthetic_id_for_an_age(age):
    patient = parse({"age": age})
    assert patient.age(TODAY) == age
    nid = classify(patient.national_id)
    assert nid.synthetic is Synthetic.TEST and nid.birth_date == patient.birth_date


def test_a_birth_no_id_can_encode_is_refused():
    later = datetime(2041, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ProtocolError, match="national ids tell births from 1854 to 2039 only"):
        population().parse({"birthDate": "2040-06-01"}, later, OWNED.get)
    assert population().parse({"birthDate": "2039-06-01"}, later, OWNED.get).birth_date == date(2039, 6, 1)


def test_a_synthetic_id_for_a_birth_date():
    patient = parse({"birthDate": "2012-02-29"})
    assert patient.birth_date == date(2012, 2, 29) and classify(patient.national_id).birth_date == date(2012, 2, 29)


def test_birth_dates_for_an_age_cover_the_whole_year():
    rng = random.Random(0)
    births = [birth_date_for_age(30, TODAY, rng) for _ in range(2000)]
    assert all(date(1994, 1, 7) <= b <= date(1995, 1, 6) for b in births)
    assert min(births) <= date(1994, 2, 1) and max(births) >= date(1994, 12, 1)


def test_synthetic_ids_are_distinct_within_a_population():
    pop = population(9)
    seen = set()
    for _ in range(50):
        patient = pop.parse({"birthDate": "1980-05-17"}, NOW, OWNED.get)
        pop.put(patient)
        seen.add(patient.national_id)
    assert len(seen) == 50


def test_given_name_and_id_agreeing_birth_date_and_age():
    patient = parse({"nationalId": GUIDE_PATIENT, "birthDate": "1939-07-26", "age": 85, "name": "Kari Nordmann"})
    assert (patient.name, patient.profile.postal_address.full_name) == ("Kari Nordmann", "Kari Nordmann")


def test_null_means_left_out_except_for_contact_data_and_address():
    patient = parse({"nationalId": None, "name": None, "answer": None, "reachable": None, "behaviour": None,
                     "profile": {"digitalMailbox": None, "contactRegister": None, "postalAddress": None}})
    assert patient.profile.digital_mailbox is True
    assert patient.profile.contact_register is None and patient.profile.postal_address is None
    assert patient.channels(TODAY) == {Channel.Helsenorge, Channel.DigitalMailbox}


def test_reachable_overrides_the_profile_but_not_the_research_reservation():
    patient = parse({"age": 10, "reachable": ["Helsenorge", 2], "reservedAgainstResearch": True})
    assert patient.channels(TODAY) == {Channel.Helsenorge, Channel.DigitalMailbox}
    assert patient.channels(TODAY, research=True) == {Channel.DigitalMailbox}
    assert parse({"reachable": []}).channels(TODAY, order_has_address=True) == frozenset()


def test_a_full_patient():
    patient = parse({
        "birthDate": "2015-03-01",
        "profile": {"helsenorgeConsent": "full", "representedBy": GUIDE_PATIENT, "reservedAgainstResearch": True,
                    "digitalMailbox": False, "contactRegister": {"email": None, "mobile": "91234567",
                                                                 "lastUpdated": "2024-01-01"},
                    "postalAddress": {"fullName": "Ola", "addressLine1": "Gate 1", "postalCode": "7030",
                                      "postalPlace": "Trondheim"}},
        "answer": {"after": "P2D", "partial": True, "warnings": [{"fieldName": "q", "warning": "w"}],
                   "onPaper": True, "filledOutBy": {"nationalId": GUIDE_PATIENT, "actType": "Fullmakt"}},
        "behaviour": "cancelsSigningThenSigns",
        "initiates": [{"formId": SIGNED_FORM.upper(), "after": "P1W"}],
    })
    assert patient.age(TODAY) == 9
    assert patient.channels(TODAY) == {Channel.Helsenorge, Channel.PhysicalMailbox}  # 9: no mailbox, no SMS
    assert patient.channels(TODAY, research=True) == {Channel.PhysicalMailbox}
    assert patient.answer.after == timedelta(days=2) and patient.answer.partial and patient.answer.on_paper
    assert patient.answer.filled_out_by.act_type is FilledOutByActType.Fullmakt
    [initiation] = patient.initiates
    assert (initiation.form_id, initiation.after, initiation.answer.after) == \
        (SIGNED_FORM, timedelta(weeks=1), timedelta(minutes=10))
    shown = patient.to_json(TODAY)
    assert shown["behaviour"] == "cancelsSigningThenSigns" and shown["reachableFrom"] == "profile"
    assert shown["initiates"][0]["answer"] == {"after": "PT10M"}
    assert shown["profile"]["representedBy"] == GUIDE_PATIENT
    assert repr(patient).count("*") == 5 and patient.national_id not in repr(patient)


# --- every refusal names the field ---------------------------------------------------------------
@pytest.mark.parametrize("body, text", [
    ({"age": -1}, "age: must be a whole number of years from 0 to 120"),
    ({"age": 4.5}, "age: must be a whole number of years from 0 to 120"),
    ({"age": True}, "age: must be a whole number of years from 0 to 120"),
    ({"birthDate": "2025-02-30"}, "birthDate: '2025-02-30' is not a real date"),
    ({"birthDate": "6.1.2025"}, "birthDate: must be a date YYYY-MM-DD"),
    ({"birthDate": "2030-01-01"}, "birthDate: 2030-01-01 is after the simulated clock's today (2025-01-06)"),
    ({"birthDate": "2000-01-01", "age": 30}, "age: someone born 2000-01-01 is 25 today, not 30"),
    ({"birthDate": "1799-12-31"}, "birthDate: 1799-12-31: a synthetic id needs a birth at most 120 years ago; "
                                  "national ids tell births from 1854 to 2039 only"),
    ({"nationalId": GUIDE_PATIENT, "birthDate": "1939-07-27"},
     "birthDate: 1939-07-27 is not the birth date in nationalId (1939-07-26); leave one of them out"),
    ({"nationalId": GUIDE_PATIENT, "age": 40}, "age: nationalId says 85 years today, not 40; leave one of them out"),
    ({"nationalId": UNBORN}, "nationalId: its birth date 2030-06-01 is after the simulated clock's today "
                             "(2025-01-06)"),  # was taken: a patient aged -6
    ({"profile": {"representedBy": UNBORN}}, "profile.representedBy: its birth date 2030-06-01 is after the "
                                             "simulated clock's today (2025-01-06)"),  # was taken
    ({"answer": {"after": "P1D", "filledOutBy": {"nationalId": UNBORN, "actType": "Fullmakt"}}},
     "answer.filledOutBy.nationalId: its birth date 2030-06-01 is after the simulated clock's today (2025-01-06)"),
    ({"name": ""}, "name: must be a non-empty string"),
    ({"profile": []}, "profile: must be an object"),
    ({"profile": {"consent": "full"}},
     "profile: unknown field(s) consent; a profile has: helsenorgeConsent, representedBy, reservedAgainstResearch, "
     "digitalMailbox, contactRegister, postalAddress"),
    ({"profile": {"helsenorgeConsent": "Full"}}, "profile.helsenorgeConsent: must be one of full, limited, none"),
    ({"profile": {"representedBy": "123"}}, "profile.representedBy: not a valid national ID (it must be exactly "
                                            "11 digits). The national ID must be either Norsk fødselsnummer or "
                                            "D-nummer."),
    ({"nationalId": GUIDE_PATIENT, "profile": {"representedBy": GUIDE_PATIENT}},
     "profile.representedBy: a patient cannot represent themself"),
    ({"profile": {"digitalMailbox": "yes"}}, "profile.digitalMailbox: must be true or false"),
    ({"profile": {"contactRegister": {"email": "a@example.org"}}},
     "profile.contactRegister.lastUpdated: is required (YYYY-MM-DD)"),
    ({"profile": {"contactRegister": {"email": 5, "lastUpdated": "2024-01-01"}}},
     "profile.contactRegister.email: must be a string or null"),
    ({"profile": {"postalAddress": {"fullName": "A", "addressLine1": "B", "postalCode": "1"}}},
     "profile.postalAddress.postalPlace: is required (a non-empty string)"),
    ({"profile": {"reservedAgainstResearch": True}, "reservedAgainstResearch": False},
     "reservedAgainstResearch: says the opposite of profile.reservedAgainstResearch; give it once"),
    ({"answer": {"after": "P1M"}}, "answer.after: 'P1M': use days, hours, minutes or seconds, not years or months"),
    ({"answer": {"after": "P1Y"}}, "answer.after: 'P1Y': use days, hours, minutes or seconds, not years or months"),
    ({"answer": {"after": "PT"}}, "answer.after: 'PT' is not an ISO-8601 duration such as 'P3D'"),
    ({"answer": {"after": "-P1D"}}, "answer.after: '-P1D' must not be negative"),
    ({"answer": {"after": "P1D", "warnings": [{"fieldName": "q"}]}},
     'answer.warnings[0]: must be {"fieldName": <text>, "warning": <text>}'),
    ({"answer": {"after": "P1D", "filledOutBy": {"actType": "Nabo"}}},
     "answer.filledOutBy.actType: must be one of Ukjent, SegSelv, Foreldrerepresentasjon, Fullmakt"),
    ({"answer": {"after": "P1D", "onPaper": True}, "profile": {"postalAddress": None}},
     "answer.onPaper: the patient cannot be reached on paper (no PhysicalMailbox in reachable, or "
     "profile.postalAddress is null)"),
    ({"answer": {"after": "P1D", "onPaper": True}, "reachable": ["Helsenorge"]},
     "answer.onPaper: the patient cannot be reached on paper (no PhysicalMailbox in reachable, or "
     "profile.postalAddress is null)"),
    ({"behaviour": "sometimes"}, "behaviour: must be one of answers, never, opensNeverDelivers, answersAfterExpiry, "
                                 "cancelsSigningThenSigns, paperMailReturned"),
    ({"behaviour": "answers"}, 'behaviour: answers needs an answer such as {"after": "P3D"}'),
    ({"behaviour": "cancelsSigningThenSigns"}, 'behaviour: cancelsSigningThenSigns needs an answer such as '
                                               '{"after": "P3D"}'),
    ({"behaviour": "never", "answer": {"after": "P1D"}},
     "behaviour: a patient who is never gives no answer; leave answer out (or null)"),
    ({"behaviour": "paperMailReturned", "answer": {"after": "P1D"}},
     "behaviour: a patient who is paperMailReturned gives no answer; leave answer out (or null)"),
    ({"initiates": {}}, 'initiates: must be a list of {"formId": ..., "after": "P1D"}'),
    ({"initiates": [{"formId": RAND_12_ID, "after": "P1D"}]},
     "initiates[0].formId: form 'RAND-12' has no owner, so a patient cannot order it (give the form an owner in "
     "the catalog)"),
    ({"initiates": [{"formId": "00000000-0000-0000-0000-000000000001", "after": "P1D"}]},
     "initiates[0].formId: no form with id '00000000-0000-0000-0000-000000000001' in the catalog"),
    ({"initiates": [{"formId": SIGNED_FORM}]}, "initiates[0].after: is required (an ISO-8601 duration such as 'P1D')"),
    ({"initiates": [{"formId": SIGNED_FORM, "after": "P1D", "answer": {"after": "P1M"}}]},
     "initiates[0].answer.after: 'P1M': use days, hours, minutes or seconds, not years or months"),
])
def test_bad_fields_are_refused_by_name(body, text):
    assert refused(body) == text


# --- the schema and the parser agree --------------------------------------------------------------
NATIONAL_IDS = st.sampled_from([GUIDE_PATIENT, TEST_PERSON, None])
DURATIONS = st.sampled_from(["P3D", "PT12H", "P1W", "PT0S", "P1DT2H30M", "PT1.5S", "PT1.5H", "P0.5D", "P0Y0M3D"])
BAD_DURATIONS = st.sampled_from(["P1M", "3 days", "P", "PT", "p3d", 3, "P3D\n", "P1Y"])
CHANNEL_VALUES = st.sampled_from(["Helsenorge", "DigitalMailbox", "Unsecure", "PhysicalMailbox", 1, 2, 3, 4])
BAD_CHANNELS = st.sampled_from(["helsenorge", "None", 0, 5, "1", True, None, "Fax"])
DATES = st.sampled_from(["2024-12-01", "2020-01-31", "2024-02-29"])


@st.composite
def valid_answers(draw, after_required=True):
    answer = {}
    if after_required or draw(st.booleans()):
        answer["after"] = draw(DURATIONS)
    if draw(st.booleans()):
        answer["formData"] = draw(st.sampled_from([None, {}, {"rand12_1": 2}]))
    if draw(st.booleans()):
        answer["partial"] = draw(st.sampled_from([True, False, None]))
    if draw(st.booleans()):
        answer["warnings"] = draw(st.sampled_from([None, [], [{"fieldName": "x", "warning": "y"}]]))
    if draw(st.booleans()):
        answer["filledOutBy"] = draw(st.sampled_from([None, {"actType": "SegSelv"},
                                                      {"nationalId": GUIDE_PATIENT, "actType": "Fullmakt"},
                                                      {"nationalId": None, "actType": "Ukjent"}]))
    return answer


@st.composite
def valid_patients(draw):
    body: dict = {}
    nid = draw(NATIONAL_IDS)
    if nid is not None or draw(st.booleans()):
        body["nationalId"] = nid
    if nid is None and draw(st.booleans()):
        body["age"] = draw(st.integers(0, 120))
    if draw(st.booleans()):
        body["name"] = draw(st.sampled_from(["Kari Nordmann", "Ola", None]))
    if draw(st.booleans()):
        body["reachable"] = draw(st.lists(CHANNEL_VALUES, max_size=4, unique_by=lambda c: (type(c), c)))
        if len({(type(c) is str, c) for c in body["reachable"]}) != len(body["reachable"]):
            body["reachable"] = []
    if draw(st.booleans()):
        profile = {}
        if draw(st.booleans()):
            profile["helsenorgeConsent"] = draw(st.sampled_from(["full", "limited", "none", None]))
        if draw(st.booleans()):
            profile["digitalMailbox"] = draw(st.sampled_from([True, False, None]))
        if draw(st.booleans()):
            profile["contactRegister"] = draw(st.sampled_from([
                None, {"lastUpdated": "2024-12-01"}, {"email": "a@example.org", "mobile": None,
                                                      "lastUpdated": draw(DATES)}]))
        if draw(st.booleans()):
            profile["postalAddress"] = draw(st.sampled_from([
                None, {"fullName": "A B", "addressLine1": "Gata 2", "postalCode": "0150", "postalPlace": "Oslo"}]))
        if draw(st.booleans()):
            profile["representedBy"] = draw(st.sampled_from([None, "01010050053"]))
        body["profile"] = profile
    behaviour = draw(st.sampled_from([None, *BEHAVIOURS]))
    if behaviour is not None:
        body["behaviour"] = behaviour
    if behaviour in ("answers", "cancelsSigningThenSigns") or (
            behaviour in (None, "opensNeverDelivers", "answersAfterExpiry") and draw(st.booleans())):
        body["answer"] = draw(valid_answers())
    if draw(st.booleans()):
        body["initiates"] = [{"formId": SIGNED_FORM, "after": draw(DURATIONS),
                              **({"answer": draw(valid_answers(after_required=False))} if draw(st.booleans()) else {})}]
    return body


def breakers():
    """Changes that make a valid patient invalid under the schema."""
    return st.one_of(
        st.tuples(st.just(("nationalId",)), st.sampled_from(["123", 26723916517, "2672391651a", ""])),
        st.tuples(st.just(("age",)), st.sampled_from([-1, 121, 4.5, "45", True])),
        st.tuples(st.just(("birthDate",)), st.sampled_from(["06.01.2025", "2025-1-6", 20250106, ""])),
        st.tuples(st.just(("name",)), st.sampled_from(["", 5, []])),
        st.tuples(st.just(("reachable",)), st.one_of(BAD_CHANNELS.map(lambda c: [c]), st.just("Helsenorge"),
                                                     st.just(["Helsenorge", "Helsenorge"]))),
        st.tuples(st.just(("profile",)), st.sampled_from([[], "full", 1])),
        st.tuples(st.just(("profile", "helsenorgeConsent")), st.sampled_from(["Full", "yes", True])),
        st.tuples(st.just(("profile", "digitalMailbox")), st.sampled_from(["true", 1])),
        st.tuples(st.just(("profile", "contactRegister")), st.sampled_from([{}, {"email": "a"}, [],
                                                                             {"lastUpdated": "2024/01/01"}])),
        st.tuples(st.just(("profile", "postalAddress")), st.sampled_from([{}, {"fullName": "A"}, "Gata 1"])),
        st.tuples(st.just(("profile", "extra")), st.just(1)),
        st.tuples(st.just(("answer",)), st.sampled_from(["P3D", [], {"partial": True}, 3])),
        st.tuples(st.just(("answer", "after")), BAD_DURATIONS),
        st.tuples(st.just(("answer", "onPaper")), st.sampled_from(["yes", 1])),
        st.tuples(st.just(("answer", "filledOutBy")), st.sampled_from([{"actType": "Nabo"}, {}, "SegSelv"])),
        st.tuples(st.just(("answer", "warnings")), st.sampled_from([[{"fieldName": "x"}], "w", [1]])),
        st.tuples(st.just(("behaviour",)), st.sampled_from(["Answers", "sometimes", 1])),
        st.tuples(st.just(("initiates",)), st.sampled_from([{}, [{"formId": SIGNED_FORM}], [{"after": "P1D"}],
                                                            [{"formId": "x", "after": "P1D"}], "P1D"])),
        st.tuples(st.just(("unknownField",)), st.just(1)),
    )


def schema_accepts(body) -> bool:
    return not list(VALIDATOR.iter_errors(body))


def parser_accepts(body) -> bool:
    try:
        parse(body)
    except ProtocolError as err:
        assert err.status == 400
        return False
    return True


@settings(max_examples=300, derandomize=True, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(valid_patients())
def test_what_the_schema_accepts_the_fake_accepts(body):
    assert schema_accepts(body), list(VALIDATOR.iter_errors(body))
    assert parser_accepts(body)


@settings(max_examples=300, derandomize=True, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(valid_patients(), breakers())
def test_what_the_schema_refuses_the_fake_refuses(body, breaker):
    path, value = breaker
    target = body
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {"after": "P1D"} if key == "answer" else {}
        target = target[key]
    target[path[-1]] = value
    if path[0] == "answer" and body.get("behaviour") in ("never", "paperMailReturned"):
        body["behaviour"] = None  # keep the breaker the only thing wrong
    assert not schema_accepts(body)
    assert not parser_accepts(body)


class NoFaker:
    def __getattr__(self, name):
        raise AssertionError(f"Faker was asked for {name}: the person should have been kept")


def test_a_person_generated_lately_is_kept_and_the_same_when_generated_again():
    factory = PersonFactory(5, remember=2)
    first = factory.person(GUIDE_PATIENT)
    faker, factory._faker = factory._faker, NoFaker()
    assert factory.person(GUIDE_PATIENT) == first  # kept: Faker not asked again
    named = factory.person(GUIDE_PATIENT, "Kari Nordmann")
    assert (named.name, named.address.full_name) == ("Kari Nordmann", "Kari Nordmann")
    assert (named.email, named.mobile, named.address.postal_code) == (first.email, first.mobile,
                                                                     first.address.postal_code)
    factory._faker = faker
    factory.person(TEST_PERSON)
    factory.person("14688030383")  # two others: the first is no longer kept
    assert factory.person(GUIDE_PATIENT) == first == PersonFactory(5).person(GUIDE_PATIENT)
