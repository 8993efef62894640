import pytest

from tests.apps.catalog.conftest import coupon_data, metric_data, plan_data, product_data
from tests.support import ApiClient
from turnus.apps.catalog import services
from turnus.apps.catalog.models import Coupon, Plan, PlanVersion, Product
from turnus.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def _created(response):
    assert response.status_code == 201, response.content
    return response.json()


def _problem(response, status=422):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def _plan(api):
    product = _created(api.post("/v1/products", product_data()))
    return _created(api.post("/v1/plans", plan_data(product["id"])))


def test_a_product_is_created_listed_retrieved_updated_and_archived(api):
    body = _created(api.post("/v1/products", product_data()))
    assert (body["object"], body["livemode"], body["tax_category"], body["active"]) == (
        "product",
        False,
        "reduced",
        True,
    )
    assert body["created_at"].endswith("Z")
    assert api.get("/v1/products").json()["data"][0]["id"] == body["id"]
    assert api.get(f"/v1/products/{body['id']}").json() == body
    updated = api.post(f"/v1/products/{body['id']}", {"description_de": "Jeden Monat frisch"}).json()
    assert (updated["description_de"], updated["name_en"]) == ("Jeden Monat frisch", "Coffee club")
    archived = api.post(f"/v1/products/{body['id']}/archive").json()
    assert archived["active"] is False
    assert api.get("/v1/products", {"active": "true"}).json()["data"] == []
    actions = [e["action"] for e in api.get("/v1/audit_events", {"object_id": body["id"]}).json()["data"]]
    assert actions == ["product.archived", "product.updated", "product.created"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (product_data(tax_category="luxury"), "tax_category"),
        (product_data(name_en="", name_de=""), "name_en"),
        (product_data(colour="red"), "colour"),
        (product_data(name_en=5), "name_en"),
    ],
)
def test_invalid_products_are_a_422_naming_the_field(api, body, field):
    assert _problem(api.post("/v1/products", body))["errors"][0]["field"] == field
    assert not Product.objects.exists()


def test_unknown_and_foreign_ids_are_404_and_change_nothing(api, make_tenant):
    theirs = ApiClient(make_tenant())
    live = ApiClient(api.tenant, livemode=True)
    product = _created(api.post("/v1/products", product_data()))
    plan = _created(api.post("/v1/plans", plan_data(product["id"])))
    metric = _created(api.post("/v1/billable_metrics", metric_data()))
    coupon = _created(api.post("/v1/coupons", coupon_data()))
    addon = _created(
        api.post(
            "/v1/addons",
            {
                "code": "x",
                "name_en": "X",
                "currency": "EUR",
                "price": {"model": "flat", "amount": "1"},
                "interval": {"unit": "month"},
            },
        )
    )
    for client in (theirs, live):
        for path, update in (
            (f"/v1/products/{product['id']}", {"name_en": "Stolen"}),
            (f"/v1/plans/{plan['id']}", {"name_en": "Stolen"}),
            (f"/v1/billable_metrics/{metric['id']}", {"name_en": "Stolen"}),
            (f"/v1/addons/{addon['id']}", {"name_en": "Stolen"}),
        ):
            assert _problem(client.get(path), 404)["code"] == "not_found"
            assert _problem(client.post(path, update), 404)["code"] == "not_found"
        assert client.get(f"/v1/coupons/{coupon['id']}").status_code == 404
        assert client.get(f"/v1/plans/{plan['id']}/versions").status_code == 404
        for path in (
            f"/v1/products/{product['id']}/archive",
            f"/v1/plans/{plan['id']}/archive",
            f"/v1/coupons/{coupon['id']}/archive",
        ):
            assert client.post(path).status_code == 404
        assert client.delete(f"/v1/addons/{addon['id']}").status_code == 404
    assert api.get("/v1/products/prod_unknown").status_code == 404
    assert api.get(f"/v1/products/{product['id']}").json() == product
    assert api.get(f"/v1/plans/{plan['id']}").json() == plan
    assert api.get(f"/v1/coupons/{coupon['id']}").json() == coupon
    assert api.get(f"/v1/addons/{addon['id']}").json() == addon


def test_a_billable_metric_is_created_and_updated_but_its_code_stays(api):
    body = _created(
        api.post(
            "/v1/billable_metrics",
            metric_data(
                aggregation="sum", property="bytes", filters=[{"property": "region", "values": ["eu"]}]
            ),
        )
    )
    assert (body["object"], body["property"], body["group_by"], body["filters"]) == (
        "billable_metric",
        "bytes",
        None,
        [{"property": "region", "values": ["eu"]}],
    )
    assert api.get("/v1/billable_metrics", {"code": "api_calls"}).json()["data"][0]["id"] == body["id"]
    updated = api.post(
        f"/v1/billable_metrics/{body['id']}", {"name_de": "Aufrufe", "group_by": "project"}
    ).json()
    assert (updated["name_de"], updated["group_by"], updated["code"]) == ("Aufrufe", "project", "api_calls")
    assert (
        _problem(api.post(f"/v1/billable_metrics/{body['id']}", {"code": "other"}))["errors"][0]["field"]
        == "code"
    )
    duplicate = _problem(api.post("/v1/billable_metrics", metric_data()), 409)
    assert (duplicate["code"], duplicate["errors"][0]["field"]) == ("code_taken", "code")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (metric_data(aggregation="median"), "aggregation"),
        (metric_data(aggregation="max"), "property"),
        (metric_data(filters=[{"property": "region", "values": []}]), "filters[0].values"),
        (metric_data(filters=[{"property": "region", "values": ["eu"], "op": "eq"}]), "filters[0].op"),
    ],
)
def test_invalid_metrics_are_a_422_naming_the_field(api, body, field):
    assert _problem(api.post("/v1/billable_metrics", body))["errors"][0]["field"] == field


def test_a_plan_is_shown_with_its_current_version_and_charges(api):
    metric = _created(api.post("/v1/billable_metrics", metric_data()))
    product = _created(api.post("/v1/products", product_data()))
    charges = [
        *plan_data(product["id"])["charges"],
        {
            "code": "calls",
            "name_en": "Calls",
            "kind": "metered",
            "metric": metric["id"],
            "price": {"model": "package", "package_size": "1000", "package_price": "1.5"},
        },
    ]
    body = _created(
        api.post("/v1/plans", plan_data(product["id"], charges=charges, billing_timing="in_advance"))
    )
    assert (body["object"], body["version"], body["product"], body["setup_fee"], body["currency"]) == (
        "plan",
        1,
        product["id"],
        "49",
        "EUR",
    )
    assert body["version_id"].startswith("pver_")
    assert body["contract"] == {
        "initial_term": {"unit": "month", "count": 12},
        "initial_notice": {"unit": "month", "count": 1},
        "renewal_term": None,
        "renewal_notice": None,
    }
    seat, calls = body["charges"]
    assert seat["price"] == {
        "model": "per_unit",
        "unit_price": "20",
        "included_units": "0",
        "minimum": None,
        "maximum": None,
    }
    assert (seat["billed_in_arrears"], calls["billed_in_arrears"], calls["metric"]) == (
        False,
        True,
        metric["id"],
    )
    assert api.get(f"/v1/plans/{body['id']}").json() == body
    assert [p["id"] for p in api.get("/v1/plans", {"product": product["id"]}).json()["data"]] == [body["id"]]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"setup_fee": 49.0}, "setup_fee"),
        ({"interval": {"unit": "month", "count": 1, "every": 2}}, "interval.every"),
        ({"anchoring": "weekly"}, "anchoring"),
        ({"charges": []}, "charges"),
        (
            {
                "charges": [
                    {
                        "code": "seat",
                        "name_en": "Seats",
                        "kind": "recurring",
                        "price": {"model": "per_unit", "unit_price": 20.5},
                    }
                ]
            },
            "charges[0].price.unit_price",
        ),
        (
            {
                "charges": [
                    {
                        "code": "seat",
                        "name_en": "S",
                        "kind": "recurring",
                        "price": {"model": "flat", "amount": "9"},
                    },
                    {
                        "code": "extra",
                        "name_en": "E",
                        "kind": "quantity",
                        "price": {
                            "model": "graduated",
                            "tiers": [{"up_to": "0", "unit_price": "1"}, {"up_to": None, "unit_price": "1"}],
                        },
                    },
                ]
            },
            "charges[1].price.tiers[0].up_to",
        ),
        ({"product": "prod_nope"}, "product"),
        ({"version": 3}, "version"),
    ],
)
def test_invalid_plans_are_a_422_naming_the_field(api, overrides, field):
    product = _created(api.post("/v1/products", product_data()))
    response = api.post("/v1/plans", plan_data(product["id"], **overrides))
    assert _problem(response)["errors"][0]["field"] == field
    assert not Plan.objects.exists()


def test_editing_an_unlocked_plan_changes_its_version_in_place(api):
    plan = _plan(api)
    body = api.post(f"/v1/plans/{plan['id']}", {"trial_days": 30, "setup_fee": None}).json()
    assert (body["version"], body["version_id"], body["trial_days"], body["setup_fee"]) == (
        1,
        plan["version_id"],
        30,
        None,
    )
    assert len(api.get(f"/v1/plans/{plan['id']}/versions").json()["data"]) == 1


def test_editing_a_locked_plan_makes_version_two_and_leaves_version_one(api):
    plan = _plan(api)
    services.lock_version(PlanVersion.objects.get(public_id=plan["version_id"]))
    new_charges = [
        {
            "code": "seat",
            "name_en": "Seats",
            "kind": "recurring",
            "price": {"model": "per_unit", "unit_price": "22"},
        }
    ]
    body = api.post(f"/v1/plans/{plan['id']}", {"charges": new_charges}).json()
    assert body["version"] == 2
    assert body["charges"][0]["price"]["unit_price"] == "22"
    assert (body["name_de"], body["setup_fee"], body["locked_at"]) == ("Profi", "49", None)
    versions = api.get(f"/v1/plans/{plan['id']}/versions").json()["data"]
    assert [v["version"] for v in versions] == [2, 1]
    first = versions[1]
    assert (first["object"], first["id"], first["plan"]) == ("plan_version", plan["version_id"], plan["id"])
    assert first["charges"][0]["price"]["unit_price"] == "20"
    assert first["locked_at"] is not None


def test_an_invalid_edit_changes_nothing(api):
    plan = _plan(api)
    response = api.post(f"/v1/plans/{plan['id']}", {"currency": "XYZ", "name_en": "Changed"})
    assert _problem(response)["errors"][0]["field"] == "currency"
    assert api.get(f"/v1/plans/{plan['id']}").json() == plan


def test_archiving_a_plan_flags_it(api):
    plan = _plan(api)
    assert api.post(f"/v1/plans/{plan['id']}/archive").json()["active"] is False
    assert api.get("/v1/plans", {"active": "false"}).json()["data"][0]["id"] == plan["id"]


def test_addons_are_created_updated_listed_and_deleted(api):
    body = _created(
        api.post(
            "/v1/addons",
            {
                "code": "support",
                "name_en": "Priority support",
                "name_de": "Bevorzugter Support",
                "currency": "EUR",
                "price": {"model": "flat", "amount": "99"},
                "interval": {"unit": "month"},
            },
        )
    )
    assert (body["object"], body["interval"], body["price"]["amount"]) == (
        "addon",
        {"unit": "month", "count": 1},
        "99",
    )
    updated = api.post(f"/v1/addons/{body['id']}", {"price": {"model": "flat", "amount": "89"}}).json()
    assert updated["price"]["amount"] == "89"
    assert [a["id"] for a in api.get("/v1/addons").json()["data"]] == [body["id"]]
    assert api.delete(f"/v1/addons/{body['id']}").json() == {
        "id": body["id"],
        "object": "addon",
        "deleted": True,
    }
    assert api.get(f"/v1/addons/{body['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"price": {"model": "flat", "amount": 9.5}}, "price.amount"),
        ({"price": {"model": "percentage", "rate_percent": "1"}}, "price.model"),
        ({"interval": {"unit": "hour"}}, "interval.unit"),
        ({"currency": "ABC"}, "currency"),
    ],
)
def test_invalid_addons_are_a_422_naming_the_field(api, body, field):
    data = {
        "code": "x",
        "name_en": "X",
        "currency": "EUR",
        "price": {"model": "flat", "amount": "1"},
        "interval": {"unit": "month"},
    }
    assert _problem(api.post("/v1/addons", {**data, **body}))["errors"][0]["field"] == field


def test_a_coupon_is_created_listed_retrieved_and_archived(api):
    body = _created(
        api.post("/v1/coupons", coupon_data(max_redemptions=100, redeem_by="2099-01-01T00:00:00+01:00"))
    )
    assert (body["object"], body["value"], body["currency"], body["times_redeemed"], body["redeem_by"]) == (
        "coupon",
        "10",
        None,
        0,
        "2098-12-31T23:00:00Z",
    )
    assert api.get("/v1/coupons", {"code": "WELCOME10"}).json()["data"][0]["id"] == body["id"]
    assert api.get(f"/v1/coupons/{body['id']}").json() == body
    assert api.post(f"/v1/coupons/{body['id']}/archive").json()["active"] is False
    assert api.get("/v1/coupons", {"active": "true"}).json()["data"] == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"value": 10.0}, "value"),
        ({"value": "0"}, "value"),
        ({"kind": "amount"}, "currency"),
        ({"duration": "monthly"}, "duration"),
        ({"duration": "repeating"}, "periods"),
        ({"times_redeemed": 5}, "times_redeemed"),
    ],
)
def test_invalid_coupons_are_a_422_naming_the_field(api, overrides, field):
    assert _problem(api.post("/v1/coupons", coupon_data(**overrides)))["errors"][0]["field"] == field
    assert not Coupon.objects.exists()


def test_a_repeated_create_with_the_same_idempotency_key_replays_the_first_answer(api):
    headers = {"Idempotency-Key": "create-plan-1"}
    product = _created(api.post("/v1/products", product_data(), headers=headers))
    again = api.post("/v1/products", product_data(), headers=headers)
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == product
    assert Product.objects.count() == 1
    assert AuditEvent.objects.filter(action="product.created").count() == 1


def test_a_repeated_plan_edit_with_the_same_key_makes_one_version(api):
    plan = _plan(api)
    services.lock_version(PlanVersion.objects.get(public_id=plan["version_id"]))
    headers = {"Idempotency-Key": "edit-1"}
    first = api.post(f"/v1/plans/{plan['id']}", {"trial_days": 7}, headers=headers)
    again = api.post(f"/v1/plans/{plan['id']}", {"trial_days": 7}, headers=headers)
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert PlanVersion.objects.count() == 2


def test_lists_page_with_a_cursor(api):
    ids = [_created(api.post("/v1/products", product_data(name_en=f"P{n}")))["id"] for n in range(3)]
    first = api.get("/v1/products", {"limit": 2}).json()
    second = api.get("/v1/products", {"limit": 2, "starting_after": first["data"][-1]["id"]}).json()
    assert [p["id"] for p in first["data"] + second["data"]] == ids[::-1]
    assert (first["has_more"], second["has_more"]) == (True, False)
