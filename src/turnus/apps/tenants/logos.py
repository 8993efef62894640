"""The tenant's logo: checked when it is set (PNG, JPEG or a self-contained SVG), printed on its invoices.

Only what renders the same everywhere and reads nothing else is accepted: a raster image Pillow decodes
(RGB or greyscale, at most ``MAX_PIXELS`` on a side), or an SVG that neither runs scripts nor refers to
anything outside itself (no external links, style sheets, fonts or images, no DTD). The type is told from
the bytes, never from a file name or a declared type.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from lxml import etree
from PIL import Image, UnidentifiedImageError

from turnus.apps.tenants.models import Tenant, TenantLogo
from turnus.core import clock
from turnus.core.audit import record
from turnus.core.errors import NotFound, ValidationFailed
from turnus.core.scope import Actor, Scope

FIELD = "logo"
MAX_BYTES = 512 * 1024
MAX_PIXELS = 4096
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_SVG_NS = "http://www.w3.org/2000/svg"
#: Elements that run code, embed another document, or draw another file.
_SVG_REFUSED_ELEMENTS = frozenset({"script", "foreignObject", "iframe", "image", "feImage"})
#: ``url(…)`` in CSS or an attribute, up to the first character of its target: only references to the
#: SVG's own elements (``url(#id)``) are accepted.
_CSS_URL = re.compile(r"url\(\s*['\"]?\s*(?P<first>.?)", re.IGNORECASE | re.DOTALL)
#: Raster modes (8-bit RGB or greyscale) that print as they look in PDF/A with its sRGB output intent.
_RASTER_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, field=FIELD)


@dataclass(frozen=True)
class CheckedLogo:
    content_type: str
    content: bytes
    sha256: str


def check(content: bytes) -> CheckedLogo:
    """``content`` as a logo Turnus prints, or ``ValidationFailed`` (field ``logo``) saying what is wrong."""
    if not content:
        raise _refuse("the logo is empty: send a PNG, JPEG or SVG image")
    if len(content) > MAX_BYTES:
        raise _refuse(f"the logo has {len(content):,} bytes; it may have at most {MAX_BYTES:,} (512 KB)")
    if content.startswith(_PNG_MAGIC):
        content_type = _check_raster(content, "PNG", TenantLogo.ContentType.PNG)
    elif content.startswith(_JPEG_MAGIC):
        content_type = _check_raster(content, "JPEG", TenantLogo.ContentType.JPEG)
    elif _looks_like_xml(content):
        content_type = _check_svg(content)
    else:
        raise _refuse("the logo must be a PNG, JPEG or SVG image")
    return CheckedLogo(content_type, content, hashlib.sha256(content).hexdigest())


def _check_raster(content: bytes, kind: str, content_type: str) -> str:
    try:
        with Image.open(io.BytesIO(content), formats=[kind]) as image:
            width, height = image.size
            if max(width, height) > MAX_PIXELS:
                raise _refuse(
                    f"the logo is {width} x {height} pixels; it may have at most {MAX_PIXELS} on a side"
                )
            if image.mode not in _RASTER_MODES:
                raise _refuse(f"the logo's colours are {image.mode}; save it as 8-bit RGB or greyscale")
            image.load()
        _check_complete(content, kind)
    except ValidationFailed:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError):
        raise _refuse(f"the logo is not a readable {kind} image") from None
    return content_type


def _check_complete(content: bytes, kind: str) -> None:
    """Refuse a cut-off file whatever Pillow's process-wide ``LOAD_TRUNCATED_IMAGES`` says (WeasyPrint
    switches it on): a PNG must pass its chunk checks up to IEND, a JPEG must end with its EOI marker."""
    if kind == "PNG":
        with Image.open(io.BytesIO(content), formats=[kind]) as image:
            image.verify()
    elif not content.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise OSError("the JPEG data ends before its end marker")


def _looks_like_xml(content: bytes) -> bool:
    head = content[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<")


def _check_svg(content: bytes) -> str:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    try:
        root = etree.fromstring(content, parser=parser)
    except etree.XMLSyntaxError as error:
        raise _refuse(f"the logo is not a well-formed SVG image: {error}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise _refuse("the SVG logo must not have a DOCTYPE")
    if root.tag != f"{{{_SVG_NS}}}svg":
        raise _refuse("the logo must be a PNG, JPEG or SVG image (an SVG's root is <svg> in its namespace)")
    for node in [*root.itersiblings(preceding=True), *root.itersiblings(), *tree.iter()]:
        _check_svg_node(node)
    return TenantLogo.ContentType.SVG


def _check_svg_node(node: Any) -> None:
    if isinstance(node, etree._ProcessingInstruction | etree._Entity):
        raise _refuse("the SVG logo must not contain processing instructions or entities")
    if isinstance(node, etree._Comment):
        return
    local = etree.QName(node).localname
    if local in _SVG_REFUSED_ELEMENTS:
        raise _refuse(f"the SVG logo must not contain <{local}>: it has to draw everything itself")
    if local == "style":
        _check_css(node.text or "")
    for name, value in node.attrib.items():
        attribute = etree.QName(name).localname
        if attribute.lower().startswith("on"):
            raise _refuse(f"the SVG logo must not have event handlers ({attribute})")
        if attribute == "href" and not value.strip().startswith("#"):
            raise _refuse("the SVG logo must not link to anything outside itself")
        if attribute == "style":
            _check_css(value)
        _check_urls(value)


def _check_css(text: str) -> None:
    """CSS may only style: no imports, and no escapes (which could spell a ``url(`` the check misses)."""
    if "@import" in text.lower() or "\\" in text:
        raise _refuse("the SVG logo's styles must not import style sheets or use escapes")
    _check_urls(text)


def _check_urls(text: str) -> None:
    for match in _CSS_URL.finditer(text):
        if match["first"] != "#":
            raise _refuse("the SVG logo must not refer to files outside itself (url(…))")


# --- use cases ---------------------------------------------------------------------------------------


def describe(logo: TenantLogo | None) -> dict[str, Any] | None:
    """What the audit trail keeps of a logo (never the image itself)."""
    if logo is None:
        return None
    return {"content_type": logo.content_type, "size": logo.size, "sha256": logo.sha256}


def logo_of(tenant_id: int) -> TenantLogo | None:
    found: TenantLogo | None = TenantLogo.objects.filter(tenant_id=tenant_id).first()
    return found


def as_data_uri(logo: TenantLogo) -> str:
    return f"data:{logo.content_type};base64,{base64.b64encode(bytes(logo.content)).decode('ascii')}"


def data_uri(tenant_id: int) -> str:
    """The tenant's logo as a ``data:`` URI for a page to embed; empty when it has none."""
    logo = logo_of(tenant_id)
    return "" if logo is None else as_data_uri(logo)


def _scope(tenant: Tenant, actor: Actor, request_id: str) -> Scope:
    """The logo is the same in live and test mode; like every tenant change, it is recorded in live mode."""
    return Scope(tenant.pk, True, actor, request_id) if request_id else Scope(tenant.pk, True, actor)


def _lock(tenant: Tenant) -> None:
    """Serialise changes of one tenant's logo (its row exists or not: the tenant's row is locked)."""
    Tenant.objects.select_for_update().only("pk").get(pk=tenant.pk)


@transaction.atomic
def set_logo(tenant: Tenant, content: bytes, *, actor: Actor, request_id: str = "") -> TenantLogo:
    """Set or replace the tenant's logo with ``content`` once it has passed ``check``."""
    checked = check(content)
    _lock(tenant)
    existing = logo_of(tenant.pk)
    before = describe(existing)
    logo = existing or TenantLogo(tenant=tenant)
    logo.content_type = checked.content_type
    logo.content = checked.content
    logo.sha256 = checked.sha256
    logo.updated_at = clock.now()
    logo.save(force_insert=existing is None)
    record(
        _scope(tenant, actor, request_id),
        "tenant.logo_updated",
        "tenant",
        tenant.public_id,
        before={"id": tenant.public_id, "logo": before},
        after={"id": tenant.public_id, "logo": describe(logo)},
    )
    return logo


@transaction.atomic
def remove_logo(tenant: Tenant, *, actor: Actor, request_id: str = "") -> None:
    """Remove the tenant's logo; ``NotFound`` when it has none."""
    _lock(tenant)
    existing = logo_of(tenant.pk)
    if existing is None:
        raise NotFound("the tenant has no logo", field=FIELD)
    before = describe(existing)
    existing.delete()
    record(
        _scope(tenant, actor, request_id),
        "tenant.logo_deleted",
        "tenant",
        tenant.public_id,
        before={"id": tenant.public_id, "logo": before},
        after={"id": tenant.public_id, "logo": None},
    )
