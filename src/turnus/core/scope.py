"""Who is acting, for which tenant, in which mode: passed explicitly into every use case."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import StrEnum


class ActorKind(StrEnum):
    API_KEY = "api_key"
    USER = "user"
    CLI = "cli"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class Scope:
    """A tenant, a mode (live or test) and an actor. Objects of one scope are never visible from another."""

    tenant_id: int
    livemode: bool
    actor: Actor
    request_id: str = field(default_factory=new_request_id)

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"
