"""Generated answers: valid for the form's questions, the same for the same seed and order id, and
overridden by fixed formData (the answer call's first, then the patient's)."""
from __future__ import annotations

import json
import random

import pytest

from fake_eprom.answers import form_data_for, generate_form_data, order_uuid
from fake_eprom.forms import default_catalog


def valid_for(form, answers: dict) -> bool:
    questions = {q.id: q for q in form.questions}
    assert set(answers) <= set(questions)
    assert {q.id for q in form.questions if q.required} <= set(answers)
    for qid, value in answers.items():
        q = questions[qid]
        if q.type == "choice":
            assert value in [o.value for o in q.options], (qid, value)
        elif q.type == "number":
            assert isinstance(value, int) and q.min <= value <= q.max, (qid, value)
        else:
            assert value in q.examples, (qid, value)
    return True


@pytest.mark.parametrize("form", default_catalog(), ids=lambda f: f.name)
def test_generated_answers_fit_the_questions(form):
    for n in range(200):
        assert valid_for(form, generate_form_data(form, random.Random(n)))


def test_optional_questions_are_sometimes_left_out_and_required_ones_never():
    signed = next(f for f in default_catalog() if f.must_be_signed)
    keys = [set(generate_form_data(signed, random.Random(n))) for n in range(200)]
    assert any("samtykke_kommentar" not in k for k in keys) and any("samtykke_kommentar" in k for k in keys)
    assert all({"samtykke_registrering", "samtykke_kontakt"} <= k for k in keys)


def test_answers_depend_only_on_seed_order_and_form():
    rand12 = default_catalog()[0]
    order = "2c3656b4-b06b-4782-8939-ccec1e820ce4"
    assert form_data_for(5, order, rand12) == form_data_for(5, order, rand12)
    assert form_data_for(5, order, rand12) != form_data_for(6, order, rand12)
    assert form_data_for(5, order, rand12) != form_data_for(5, "00000000-0000-4000-8000-000000000001", rand12)
    assert order_uuid(5, order, "signed-form") == order_uuid(5, order, "signed-form")
    assert order_uuid(5, order, "signed-form") != order_uuid(5, order, "scanned-paper")


def completed_form_data(sim, order_id) -> dict:
    return json.loads(sim.bodies(order_id, "Completed")[0]["formData"])


def test_the_app_sends_the_generated_answers_of_the_order(sim):
    got = sim.ordered()
    sim.settle()
    sim.answer(got["id"])
    sim.settle()
    rand12 = default_catalog()[0]
    assert completed_form_data(sim, got["id"]) == form_data_for(sim.runtime.seed, got["id"], rand12)


def test_answers_do_not_depend_on_what_else_happened(make_sim):
    """The second order's answers are the same whether or not another order was answered first."""
    def answers_of_second_order(answer_first: bool):
        sim = make_sim(seed=21)
        first, second = sim.ordered(), sim.ordered()
        sim.settle()
        if answer_first:
            sim.answer(first["id"])
        sim.answer(second["id"])
        sim.settle()
        return second["id"], completed_form_data(sim, second["id"])

    assert answers_of_second_order(True) == answers_of_second_order(False)


def test_fixed_form_data_of_the_patient(sim):
    fixed = {"rand12_1": 3, "note": "æøå"}
    nid = sim.patient(answer={"after": "PT1H"}, formData=fixed)["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.advance(hours=1)
    body = sim.bodies(got["id"], "Completed")[0]
    assert json.loads(body["formData"]) == fixed
    assert "æøå" in body["formData"]  # UTF-8 text, not \u escapes


def test_form_data_of_the_answer_call_wins_over_the_patients(sim):
    nid = sim.patient(formData={"rand12_1": 3})["nationalId"]
    got = sim.ordered(nationalId=nid)
    sim.settle()
    assert sim.answer(got["id"], {"formData": {"rand12_1": 5}}).status_code == 200
    sim.settle()
    assert completed_form_data(sim, got["id"]) == {"rand12_1": 5}


def test_empty_answer_call_body_generates_answers(sim):
    got = sim.ordered()
    sim.settle()
    response = sim.client.post(f"/_sim/orders/{got['id']}/answer")
    assert response.status_code == 200
    sim.settle()
    assert len(completed_form_data(sim, got["id"])) == 12
