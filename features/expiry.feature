Feature: Orders expire, and orders end with their lifetime
  An order whose expiry date passes unanswered is returned as Expired to every linked registry. After
  its 365-day lifetime an order is no longer active whatever its status: a new order then makes a new
  ePROM order instead of linking.

  Scenario: The expiry date passes unanswered
    Given a patient who never answers
    When registry-a orders RAND-12 for the patient expiring in 14 days
    And registry-b orders RAND-12 for the patient
    And 15 days pass
    Then registry-a received "Ordered, Expired" for its order
    And registry-b received "Ordered, Expired" for its order
    And ePROM holds exactly 1 order for the patient and RAND-12

  Scenario: An expired order inside its lifetime is still linked, and its expiry replayed
    Given a patient who never answers
    When registry-a orders RAND-12 for the patient expiring in 14 days
    And 364 days pass
    And registry-b orders RAND-12 for the patient
    Then registry-b received "Ordered, Expired" for its order
    And ePROM holds exactly 1 order for the patient and RAND-12

  Scenario: After the 365-day lifetime a new order makes a new ePROM order
    Given a patient who never answers
    When registry-a orders RAND-12 for the patient expiring in 14 days
    And 365 days pass
    And registry-b orders RAND-12 for the patient
    Then ePROM holds exactly 2 orders for the patient and RAND-12
    And registry-b received "Ordered" for its order
