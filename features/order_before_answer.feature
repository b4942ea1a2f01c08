Feature: Registries that order before the patient answers share one ePROM order
  Several quality registries want the same questionnaire from the same patient. The first order goes
  on to ePROM; later orders for the same patient and form link to it, and every linked registry gets
  the status and the answer under its own order id and with its own key.

  Scenario: Two registries order, then the patient answers
    Given a patient who never answers
    When registry-a orders RAND-12 for the patient
    And registry-b orders RAND-12 for the patient
    Then ePROM holds exactly 1 order for the patient and RAND-12
    And registry-a received "Ordered" for its order
    And registry-b received "Ordered" for its order
    When the patient answers
    Then registry-a received "Ordered, Completed" for its order
    And registry-b received "Ordered, Completed" for its order
    And every registry that got the answer got the same form data

  Scenario: An unreachable patient: the order fails, and a failed order is never linked
    Given a patient who cannot be reached on any channel
    When registry-a orders RAND-12 for the patient
    Then registry-a received "Error" for its order
    When registry-b orders RAND-12 for the patient
    Then ePROM holds exactly 2 orders for the patient and RAND-12
    And registry-b received "Error" for its latest order

  Scenario: The same registry ordering again makes a new ePROM order, and another registry links to the newest
    Given a patient who never answers
    When registry-a orders RAND-12 for the patient
    And registry-a orders RAND-12 for the patient
    Then ePROM holds exactly 2 orders for the patient and RAND-12
    When registry-b orders RAND-12 for the patient
    Then ePROM holds exactly 2 orders for the patient and RAND-12
    And registry-b received "Ordered" for its order
