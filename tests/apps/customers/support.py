from typing import Any


def customer_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Erika Mustermann",
        "email": "erika@example.com",
        "address_line1": "Heidestraße 17",
        "postal_code": "51147",
        "city": "Köln",
        "country": "DE",
    }
    data.update(overrides)
    return data
