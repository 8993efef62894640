from decimal import Decimal

import pytest
from ninja import Schema

from turnus.core.api import DecimalString
from turnus.project.api import api as v1

pytestmark = pytest.mark.django_db


def test_a_nul_character_in_a_body_is_a_422_naming_the_field(api):
    response = api.post("/v1/products", {"name_en": "Coffee\u0000club"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name_en"


def test_a_nul_character_in_a_query_parameter_is_a_422_naming_it(api):
    response = api.get("/v1/products", {"starting_after": "prod_\u0000"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "starting_after"


def test_a_nul_character_in_an_id_is_a_404(api):
    response = api.get("/v1/products/prod_%00")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_decimal_strings_are_never_written_in_exponent_form():
    class Amount(Schema):
        value: DecimalString

    assert Amount(value=Decimal("5E+1")).model_dump() == {"value": "50"}
    assert Amount(value=Decimal("5E+1")).model_dump_json() == '{"value":"50"}'


def test_every_route_documents_its_problem_answers():
    schema = v1.get_openapi_schema(path_prefix="/v1/")
    assert "Problem" in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {401, 422} <= set(responses), (method, path)
            assert "application/problem+json" in responses[422]["content"]


def test_catalog_and_subscription_add_ons_have_distinct_schemas():
    schemas = v1.get_openapi_schema(path_prefix="/v1/")["components"]["schemas"]
    assert "code" in schemas["AddOnOut"]["properties"]
    assert set(schemas["SubscriptionAddOnOut"]["properties"]) == {"addon", "quantity"}
