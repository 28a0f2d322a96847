import pytest

from martech.names import did_you_mean


@pytest.mark.parametrize("name, known, expected", [
    ("spnd", ["spend", "tier"], "spend"),  # a typo
    ("EMAIL", ["email", "tier"], "email"),  # another case
    ("id", ["customer_id", "tier"], "customer_id"),  # a word of the field
    ("email", ["email_hash", "tier"], "email_hash"),
    ("customer_id", ["id", "score"], "id"),  # the field a word of the name
    ("Customer ID", ["customer_id", "tier"], "customer_id"),
    ("idz", ["ids"], "ids"),  # a short name, one letter wrong
])
def test_the_nearest_known_name_is_suggested(name, known, expected):
    assert did_you_mean(name, known) == f" (did you mean {expected}?)"


@pytest.mark.parametrize("name, known", [
    ("shoe_size", ["customer_id", "tier"]),  # nothing near
    ("id", ["customer_id", "order_id"]),  # a word of two fields: nothing says which
    ("a", ["a_b", "c"]),  # one letter is no word to go by
])
def test_nothing_is_suggested_when_no_one_name_is_near(name, known):
    assert did_you_mean(name, known) == ""
