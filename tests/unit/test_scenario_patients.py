"""Giving a scenario's patients to the fake ePROM: patients named by others go first, refs become national
ids and form names form ids, and a patient the fake ePROM refuses is reported at its place in the file.
A fake poster stands in for POST /_sim/patients."""
from __future__ import annotations

import pytest

from harness.scenario import PatientRefused, ScenarioError, add_patients, scenario_from_dict

EXTRA = "5c1e3f1a-7d4b-4e8e-9f59-0d8f3b6a2c11"


class Poster:
    """Records the bodies and hands out national ids in order (or refuses, as the fake ePROM would)."""

    def __init__(self, refuse: dict[int, str] | None = None):
        self.bodies: list[dict] = []
        self.refuse = refuse or {}

    def __call__(self, body: dict) -> dict:
        self.bodies.append(body)
        if len(self.bodies) - 1 in self.refuse:
            raise PatientRefused(self.refuse[len(self.bodies) - 1])
        return {"nationalId": body.get("nationalId") or f"id-{len(self.bodies)}", **body}


def scenario(patients: list[dict]):
    return scenario_from_dict({
        "topology": {"forms": [{"id": EXTRA, "name": "Egenrapport", "owner": "eprox", "questions": [
            {"id": "q", "text": "Hvordan går det?", "type": "number", "min": 0, "max": 10}]}]},
        "patients": patients}, source="s.yaml")


def test_patients_named_by_others_go_first_and_refs_become_their_national_ids():
    poster = Poster()
    ids = add_patients(scenario([
        {"ref": "emil", "age": 8, "profile": {"representedBy": "mor"},
         "answer": {"after": "P2D", "filledOutBy": {"nationalId": "mor", "actType": "Foreldrerepresentasjon"},
                    "formData": {"representedBy": "mor"}}},
        {"ref": "mor", "age": 40},
        {"ref": "ola", "nationalId": "26670271527", "initiates": [{"formId": "Egenrapport", "after": "P1D"}]},
    ]), poster)
    assert ids == {"emil": "id-2", "mor": "id-1", "ola": "26670271527"}  # file order, whatever the post order
    mor, emil, ola = poster.bodies
    assert mor == {"age": 40}
    assert emil["profile"] == {"representedBy": "id-1"}
    assert emil["answer"]["filledOutBy"] == {"nationalId": "id-1", "actType": "Foreldrerepresentasjon"}
    assert emil["answer"]["formData"] == {"representedBy": "mor"}  # answers are passed on as written
    assert ola["initiates"] == [{"formId": EXTRA, "after": "P1D"}]
    assert "ref" not in emil


def test_every_refused_patient_is_reported_at_its_place():
    poster = Poster(refuse={0: "answer.onPaper: the patient cannot be reached on paper",
                            2: "something without a field"})
    with pytest.raises(ScenarioError) as caught:
        add_patients(scenario([{"ref": "a"}, {"ref": "b"}, {"ref": "c"}]), poster)
    assert caught.value.problems == [
        "s.yaml: patients[0].answer.onPaper: the patient cannot be reached on paper",
        "s.yaml: patients[2]: something without a field",
    ]


def test_a_patient_who_names_a_refused_patient_is_not_sent_and_not_reported_twice():
    poster = Poster(refuse={0: "birthDate: 2031-01-01 is after the simulated clock's today"})
    with pytest.raises(ScenarioError) as caught:
        add_patients(scenario([{"ref": "barn", "profile": {"representedBy": "mor"}}, {"ref": "mor"},
                               {"ref": "ola"}]), poster)
    assert caught.value.problems == [
        "s.yaml: patients[1].birthDate: 2031-01-01 is after the simulated clock's today"]
    assert len(poster.bodies) == 2  # mor and ola; barn was never sent
