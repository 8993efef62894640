import pytest


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "header"),
    [("en", "Turnus back-office"), ("de", "Turnus-Backoffice")],
)
def test_the_admin_login_page_speaks_english_and_german(client, language, header):
    response = client.get("/admin/login/", headers={"accept-language": language})
    assert response.status_code == 200
    assert header in response.content.decode()


@pytest.mark.django_db
def test_the_admin_asks_anonymous_visitors_to_log_in(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_a_superuser_sees_the_admin_index(admin_client):
    response = admin_client.get("/admin/", headers={"accept-language": "de"})
    assert response.status_code == 200
    assert "Abonnements und Abrechnung" in response.content.decode()
