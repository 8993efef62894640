"""A /v1 API with one writing route, to test the idempotency middleware on its own."""

import json

from django.http import HttpRequest
from django.urls import path
from ninja import NinjaAPI, Schema, Status

from turnus.apps.tenants.auth import SecretKeyAuth
from turnus.core.api import InputSchema, install_problem_handlers, scope_of
from turnus.core.audit import record
from turnus.core.errors import Conflict
from turnus.core.ids import new_id

api = NinjaAPI(auth=SecretKeyAuth(), urls_namespace="idempotency-test")
install_problem_handlers(api)


class NoteIn(InputSchema):
    text: str


class NoteOut(Schema):
    id: str
    text: str


@api.post("/notes", response={201: NoteOut})
def create_note(request: HttpRequest, payload: NoteIn):
    scope = scope_of(request)
    note_id = new_id("note")
    record(scope, "note.created", "note", note_id, after={"text": payload.text})
    if payload.text == "conflict":
        raise Conflict("notes saying 'conflict' are refused after writing")
    if payload.text == "crash":
        raise RuntimeError("boom")
    return Status(201, {"id": note_id, "text": json.loads(json.dumps(payload.text))})


urlpatterns = [path("v1/", api.urls)]
