"""The tenant's logo: set, replaced and removed through /v1/tenant/logo and the back office, each change
audited; anything but a PNG, JPEG or self-contained SVG of at most 512 KB is refused naming ``logo``, and a
refused upload changes nothing."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.apps.tenants import images
from tests.support import TEST_ACTOR, ApiClient
from turnus.apps.tenants import logos, services
from turnus.apps.tenants.models import TenantLogo
from turnus.core.errors import ValidationFailed
from turnus.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def _send(api: ApiClient, content: bytes, content_type: str, headers: dict[str, str] | None = None):
    return api.client.post(
        "/v1/tenant/logo", content, content_type=content_type, headers=api._headers(headers)
    )


def _send_form(api: ApiClient, fields: dict):
    """A multipart/form-data POST, as an HTML form or ``curl -F logo=@logo.svg`` sends it."""
    return api.client.post("/v1/tenant/logo", fields, headers=api._headers(None))


def _logo_events(tenant) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(object_id=tenant.public_id, action__startswith="tenant.logo").order_by("pk")
    )


def _assert_refused(response, fragment: str) -> None:
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_failed"
    assert [error["field"] for error in body["errors"]] == ["logo"]
    assert fragment in body["detail"]


# --- through the API -----------------------------------------------------------------------------------


def test_a_png_logo_is_set_through_the_api_and_served_back(api):
    image = images.png()
    response = _send(api, image, "image/png")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "tenant_logo"
    assert (body["tenant"], body["content_type"], body["size"]) == (
        api.tenant.public_id,
        "image/png",
        len(image),
    )
    assert body["sha256"] == hashlib.sha256(image).hexdigest()
    served = api.get("/v1/tenant/logo")
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served.content == image
    assert served["ETag"] == f'"{body["sha256"]}"'


def test_a_logo_may_come_as_the_logo_field_of_a_multipart_form(api):
    image = images.svg()
    upload = SimpleUploadedFile("logo.svg", image, content_type="image/svg+xml")
    response = _send_form(api, {"logo": upload})
    assert response.status_code == 200, response.content
    assert response.json()["content_type"] == "image/svg+xml"
    assert bytes(TenantLogo.objects.get(tenant=api.tenant).content) == image


def test_the_type_is_told_from_the_image_not_from_the_declared_type(api):
    response = _send(api, images.jpeg(), "application/octet-stream")
    assert response.status_code == 200
    assert response.json()["content_type"] == "image/jpeg"
    assert _send(api, images.png(), "image/jpeg").json()["content_type"] == "image/png"


def test_a_new_logo_replaces_the_old_one_and_both_changes_are_audited(api):
    first, second = images.png(), images.jpeg()
    assert _send(api, first, "image/png").status_code == 200
    assert _send(api, second, "image/jpeg").status_code == 200
    assert TenantLogo.objects.filter(tenant=api.tenant).count() == 1
    assert api.get("/v1/tenant/logo").content == second
    set_event, replaced = _logo_events(api.tenant)
    assert set_event.action == replaced.action == "tenant.logo_updated"
    assert set_event.before == {"id": api.tenant.public_id, "logo": None}
    assert replaced.before == set_event.after
    assert replaced.after["logo"] == {
        "content_type": "image/jpeg",
        "size": len(second),
        "sha256": hashlib.sha256(second).hexdigest(),
    }
    assert replaced.actor.startswith("api_key:")
    assert replaced.livemode is True, "tenant changes are recorded with the tenant's live events"


def test_removing_the_logo_leaves_none_and_a_second_removal_is_a_404(api):
    _send(api, images.png(), "image/png")
    response = api.delete("/v1/tenant/logo")
    assert response.status_code == 200
    assert response.json() == {"object": "tenant_logo", "tenant": api.tenant.public_id, "deleted": True}
    assert not TenantLogo.objects.exists()
    missing = api.get("/v1/tenant/logo")
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/problem+json"
    again = api.delete("/v1/tenant/logo")
    assert again.status_code == 404
    assert again.json()["errors"][0]["field"] == "logo"
    assert [event.action for event in _logo_events(api.tenant)] == [
        "tenant.logo_updated",
        "tenant.logo_deleted",
    ]
    assert _logo_events(api.tenant)[-1].after == {"id": api.tenant.public_id, "logo": None}


def test_the_logo_is_the_same_in_both_modes_and_no_other_tenant_sees_it(tenant, make_tenant):
    test_api, live_api, their_api = (
        ApiClient(tenant),
        ApiClient(tenant, livemode=True),
        ApiClient(make_tenant()),
    )
    image = images.png()
    assert _send(test_api, image, "image/png").status_code == 200
    assert live_api.get("/v1/tenant/logo").content == image
    assert their_api.get("/v1/tenant/logo").status_code == 404
    assert their_api.delete("/v1/tenant/logo").status_code == 404
    assert TenantLogo.objects.filter(tenant=tenant).exists()


def test_setting_the_logo_replays_an_idempotency_key(api):
    headers = {"Idempotency-Key": "logo-1"}
    first = _send(api, images.png(), "image/png", headers)
    again = _send(api, images.png(), "image/png", headers)
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(_logo_events(api.tenant)) == 1
    other = _send(api, images.jpeg(), "image/jpeg", headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert api.get("/v1/tenant/logo").content == images.png()


def test_setting_the_logo_needs_a_secret_key(client):
    response = client.post("/v1/tenant/logo", images.png(), content_type="image/png")
    assert response.status_code == 401


# --- refused ---------------------------------------------------------------------------------------------

XXE = images.svg(
    "<text>&secret;</text>", head='<!DOCTYPE svg [<!ENTITY secret SYSTEM "file:///etc/hostname">]>'
)

REFUSED = {
    "empty": (b"", "empty"),
    "text": (b"just some text", "PNG, JPEG or SVG"),
    "gif": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "PNG, JPEG or SVG"),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PNG, JPEG or SVG"),
    "truncated png": (images.png()[:60], "not a readable PNG"),
    "png cut before its end": (images.png()[:-20], "not a readable PNG"),
    "jpeg cut before its end": (images.jpeg()[:-40], "not a readable JPEG"),
    "cmyk jpeg": (images.jpeg(mode="CMYK"), "RGB or greyscale"),
    "too many pixels": (images.png(5000, 2, (0, 0, 0, 255)), "at most 4096"),
    "html": (b"<html><body>logo</body></html>", "PNG, JPEG or SVG"),
    "malformed svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>', "well-formed"),
    "svg without namespace": (b'<svg width="10" height="10"><rect/></svg>', "PNG, JPEG or SVG"),
    "svg script": (images.svg("<script>alert(1)</script>"), "<script>"),
    "svg event handler": (images.svg(attrs=' onload="alert(1)"'), "event handlers"),
    "svg external image": (
        images.svg('<image xlink:href="file:///etc/hosts" width="9" height="9"/>'),
        "<image>",
    ),
    "svg external use": (images.svg('<use href="https://example.com/a.svg#x"/>'), "outside itself"),
    "svg external link": (
        images.svg('<a xlink:href="https://example.com"><rect width="9" height="9"/></a>'),
        "outside",
    ),
    "svg css url": (images.svg('<rect width="9" height="9" style="fill: url(\'file:///x\')"/>'), "url("),
    "svg quoted url with a parenthesis": (
        images.svg('<style>rect { fill: url("file:///a)b") }</style>'),
        "url(",
    ),
    "svg attribute url": (
        images.svg('<rect width="9" height="9" fill="url(https://example.com/p)"/>'),
        "url(",
    ),
    "svg import": (images.svg("<style>@import 'https://example.com/a.css';</style>"), "import"),
    "svg css escape": (images.svg(r"<style>rect { fill: \75 rl(file:///x) }</style>"), "escapes"),
    "svg font face": (images.svg("<style>@font-face { src: url(file:///f.ttf) }</style>"), "url("),
    "svg doctype entity": (XXE, "DOCTYPE"),
    "svg stylesheet instruction": (
        images.svg(head='<?xml-stylesheet href="https://example.com/a.css"?>'),
        "processing instructions",
    ),
    "svg foreign object": (images.svg("<foreignObject><p>x</p></foreignObject>"), "<foreignObject>"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_anything_but_a_safe_png_jpeg_or_svg_is_refused_and_the_current_logo_stays(api, case):
    content, fragment = REFUSED[case]
    current = images.png()
    _send(api, current, "image/png")
    before = _logo_events(api.tenant)
    _assert_refused(_send(api, content, "image/svg+xml" if b"<" in content[:1] else "image/png"), fragment)
    assert api.get("/v1/tenant/logo").content == current
    assert _logo_events(api.tenant) == before


def test_a_logo_over_512_kb_is_refused(api):
    image = images.noisy_png(450)
    assert len(image) > logos.MAX_BYTES
    _assert_refused(_send(api, image, "image/png"), "at most 524,288")
    assert not TenantLogo.objects.exists()
    assert not _logo_events(api.tenant)


def test_an_upload_far_over_the_limit_is_refused_before_it_is_read(api):
    response = _send(api, b"\x89PNG\r\n\x1a\n" + bytes(3 * 1024 * 1024), "image/png")
    _assert_refused(response, "at most 524,288")


def test_a_json_body_or_a_form_without_the_logo_field_is_refused(api):
    _assert_refused(_send(api, b'{"logo": "iVBORw0KGgo="}', "application/json"), "send the image as the body")
    _assert_refused(_send_form(api, {"image": "x"}), "multipart field 'logo'")
    _assert_refused(_send(api, b"--x\r\nnot a form", "multipart/form-data"), "unreadable")
    assert not TenantLogo.objects.exists()


def test_a_logo_just_under_512_kb_is_accepted(api):
    side = 420
    image = images.noisy_png(side)
    while len(image) > logos.MAX_BYTES:
        side -= 2
        image = images.noisy_png(side)
    assert len(image) > logos.MAX_BYTES - 5_000
    assert _send(api, image, "image/png").status_code == 200


def test_the_check_accepts_svg_that_only_refers_to_itself():
    gradient = images.svg(
        '<defs><linearGradient id="g"><stop offset="0" stop-color="#000"/></linearGradient>'
        '<path id="p" d="M0 0h9v9z"/></defs><use href="#p"/><use xlink:href="#p" x="10"/>'
        '<rect width="40" height="9" fill="url(#g)" style="stroke: url( \'#g\' )"/>'
        "<style>rect { fill: url(#g) }</style><!-- a comment -->",
        head='<?xml version="1.0" encoding="UTF-8"?>\n',
    )
    checked = logos.check(gradient)
    assert checked.content_type == "image/svg+xml"
    assert checked.sha256 == hashlib.sha256(gradient).hexdigest()


def test_setting_a_refused_logo_directly_raises_and_writes_nothing(tenant):
    with pytest.raises(ValidationFailed) as refused:
        logos.set_logo(tenant, b"nope", actor=TEST_ACTOR)
    assert refused.value.field == "logo"
    assert not TenantLogo.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="tenant.logo").exists()


# --- in the back office ----------------------------------------------------------------------------------


def _form(tenant, **extra) -> dict:
    data = {name: getattr(tenant, name) for name in services.TENANT_FIELDS}
    data = {name: value for name, value in data.items() if value not in ("", False, None)}
    return {**data, **extra}


def test_the_back_office_uploads_replaces_and_removes_the_logo_and_audits_it(admin_client, tenant):
    url = f"/admin/tenants/tenant/{tenant.pk}/change/"
    upload = SimpleUploadedFile("logo.png", images.png(), content_type="image/png")
    response = admin_client.post(url, _form(tenant, logo_upload=upload))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert bytes(TenantLogo.objects.get(tenant=tenant).content) == images.png()
    page = admin_client.get(url).content.decode()
    assert 'src="data:image/png;base64,' in page
    response = admin_client.post(url, _form(tenant, remove_logo="on"))
    assert response.status_code == 302
    assert not TenantLogo.objects.exists()
    events = _logo_events(tenant)
    assert [event.action for event in events] == ["tenant.logo_updated", "tenant.logo_deleted"]
    assert all(event.actor.startswith("user:") for event in events)


def test_the_back_office_shows_why_a_logo_is_refused_and_changes_nothing(admin_client, tenant):
    url = f"/admin/tenants/tenant/{tenant.pk}/change/"
    upload = SimpleUploadedFile(
        "logo.svg", images.svg("<script>alert(1)</script>"), content_type="image/svg+xml"
    )
    response = admin_client.post(url, _form(tenant, logo_upload=upload, city="Potsdam"))
    assert response.status_code == 200
    assert "must not contain &lt;script&gt;" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.city == "Berlin"
    assert not TenantLogo.objects.exists()


def test_a_cut_off_image_is_refused_also_after_a_render_allowed_truncated_images():
    """WeasyPrint switches on Pillow's process-wide LOAD_TRUNCATED_IMAGES; the check must not rely on it."""
    import weasyprint  # noqa: F401
    from PIL import ImageFile

    from turnus.apps.tenants import logos
    from turnus.core.errors import ValidationFailed

    assert ImageFile.LOAD_TRUNCATED_IMAGES
    for cut in (images.png()[:-20], images.jpeg()[:-40]):
        with pytest.raises(ValidationFailed):
            logos.check(cut)
