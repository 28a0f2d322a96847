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


@pytest.mark.parametrize("names, found", [
    (["CUSTOMER_ID", "TIER"], "CUSTOMER_ID"), (["Customer_Id"], "Customer_Id"),
    (["customer_id", "CUSTOMER_ID"], "CUSTOMER_ID"),  # the name as written is not "written otherwise"
    (["CUSTOMER_ID", "Customer_ID"], None),  # two other cases: nothing says which
    (["Customer ID", "Tier"], "Customer ID"), (["customer-id"], "customer-id"),  # as BI tools and spreadsheets show it
    (["customerId", "tier"], "customerId"), (["CustomerID"], "CustomerID"),  # as APIs write JSON
    (["Customer ID", "customerId"], None),  # two ways: nothing says which
    (["customer", "id"], None), (["customerid"], None), (["_customer_id"], None), ([], None),
])
def test_a_name_written_otherwise_is_found_only_when_one_alone_matches(names, found):
    from martech.names import written_otherwise

    assert written_otherwise("customer_id", names) == found


def test_a_name_and_the_name_in_camel_case_match_as_written_in_lower_case_too():
    from martech.names import SpelledAlike, written_otherwise

    assert written_otherwise("lifetimeValue", ["LIFETIMEVALUE"]) == "LIFETIMEVALUE"  # a camelCase field, in capitals
    assert written_otherwise("lifetimeValue", ["lifetime value"]) == "lifetime value"
    fields = SpelledAlike(["customer_id", "customerId", "tier"])  # alike written otherwise: neither is meant
    assert (fields.get("Customer ID"), fields.get("CUSTOMERID"), fields.get("TIER")) == (None, "customerId", "tier")
