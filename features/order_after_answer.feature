Feature: A registry that orders after the patient answered gets the answer at once
  ePROX keeps the answer for the order's lifetime, so a registry that links to an answered order is
  told the status and then the answer at once, without the patient being asked again.

  Scenario: The patient answered registry-a's order before registry-b ordered
    Given a patient who answers P3D after the order reaches them
    When registry-a orders RAND-12 for the patient
    And 4 days pass
    Then registry-a received "Ordered, Completed" for its order
    When registry-b orders RAND-12 for the patient
    Then registry-b received "Ordered, Completed" for its order
    And ePROM holds exactly 1 order for the patient and RAND-12
    And every registry that got the answer got the same form data

  Scenario: A relevant date after the answered order makes a new order instead
    Given a patient who answers P1D after the order reaches them
    When registry-a orders RAND-12 for the patient
    And 10 days pass
    And registry-b orders RAND-12 for the patient with metadata {"RELEVANT_DATE": "2025-01-10"}
    Then ePROM holds exactly 2 orders for the patient and RAND-12
    And registry-b received "Ordered" for its order

  Scenario: CREATE_NEW_ORDER false with nothing to link to gives the zero id
    Given a patient who answers P1D after the order reaches them
    When registry-a orders RAND-12 for the patient
    And 2 days pass
    And registry-a orders RAND-12 for the patient with metadata {"CREATE_NEW_ORDER": false}
    Then registry-a was given the zero id
    And ePROM holds exactly 1 order for the patient and RAND-12
