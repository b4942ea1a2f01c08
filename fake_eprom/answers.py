"""A patient's answers to a form, generated from its questions: the same seed and order id always give
the same answers, whatever else happened in the run."""
from __future__ import annotations

import random
import uuid
from typing import Any

from .forms import Form, Question

OPTIONAL_LEFT_OUT = 0.2  # how often a generated answer leaves an optional question empty


def order_rng(seed: int | str, order_id: str, purpose: str) -> random.Random:
    """A generator for one purpose of one order, independent of the order in which orders are handled."""
    return random.Random(f"{seed}:fake-eprom:{purpose}:{order_id}")


def order_uuid(seed: int | str, order_id: str, purpose: str) -> str:
    """A seeded uuid that belongs to one order (its signed form id, its scanned paper id...)."""
    return str(uuid.UUID(int=order_rng(seed, order_id, purpose).getrandbits(128), version=4))


def generate_form_data(form: Form, rng: random.Random) -> dict[str, Any]:
    """Answers keyed by question id, in the form's question order."""
    answers: dict[str, Any] = {}
    for question in form.questions:
        if not question.required and rng.random() < OPTIONAL_LEFT_OUT:
            continue
        answers[question.id] = answer_question(question, rng)
    return answers


def answer_question(question: Question, rng: random.Random) -> Any:
    if question.type == "choice":
        return rng.choice(question.options).value
    if question.type == "number":
        return rng.randint(question.min, question.max)
    return rng.choice(question.examples)


def form_data_for(seed: int | str, order_id: str, form: Form) -> dict[str, Any]:
    """The generated answers of one order."""
    return generate_form_data(form, order_rng(seed, order_id, "answers"))


MISSING_ANSWER_WARNING = "Required question is not answered"  # a formDataWarnings entry's text
PARTIAL_LEFT_OUT = 3  # a partial answer leaves out one question in this many (at least one)


def partial_form_data(form: Form, answers: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The answers with some questions left out, required ones included: a patient who gave up half-way."""
    present = [q.id for q in form.questions if q.id in answers]
    if not present:
        return dict(answers)
    dropped = set(rng.sample(present, max(1, len(present) // PARTIAL_LEFT_OUT)))
    return {k: v for k, v in answers.items() if k not in dropped}


def missing_answer_warnings(form: Form, answers: dict[str, Any]) -> list[dict[str, str]]:
    """formDataWarnings for the required questions the answers leave out, in the form's order."""
    return [{"fieldName": q.id, "warning": MISSING_ANSWER_WARNING}
            for q in form.questions if q.required and q.id not in answers]


def filled_form(seed: int | str, order_id: str, form: Form, fixed: dict[str, Any] | None, *, partial: bool,
                extra_warnings: tuple[dict, ...] = ()) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """What the patient sends back: the answers (fixed, or generated from the questions, some left out when
    partial) and the warnings ePROM attaches (missing required answers, then any scripted ones)."""
    answers = dict(fixed) if fixed is not None else form_data_for(seed, order_id, form)
    if partial and fixed is None:
        answers = partial_form_data(form, answers, order_rng(seed, order_id, "partial"))
    return answers, missing_answer_warnings(form, answers) + [dict(w) for w in extra_warnings]
