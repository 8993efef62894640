"""``turnus keys create|list|revoke``: API keys from the command line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from turnus.apps.tenants import services
from turnus.apps.tenants.models import ApiKey, Tenant
from turnus.core.errors import TurnusError
from turnus.core.scope import Actor, ActorKind

CLI = Actor(ActorKind.CLI, "turnus keys")


def find_tenant(reference: str) -> Tenant:
    tenant = (
        Tenant.objects.filter(slug=reference).first() or Tenant.objects.filter(public_id=reference).first()
    )
    if tenant is None:
        raise CommandError(f"no tenant {reference!r} (give its slug or id)")
    return tenant


class Command(BaseCommand):
    help = "Create, list and revoke API keys of a tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key; its plaintext is printed once")
        create.add_argument("--tenant", required=True, help="tenant slug or id")
        create.add_argument("--mode", choices=("test", "live"), default="test")
        create.add_argument("--kind", choices=ApiKey.Kind.values, default=ApiKey.Kind.SECRET)
        create.add_argument("--name", default="")
        listing = sub.add_parser("list", help="list a tenant's keys")
        listing.add_argument("--tenant", required=True)
        revoke = sub.add_parser("revoke", help="revoke a key by its id")
        revoke.add_argument("--tenant", required=True)
        revoke.add_argument("key_id")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = find_tenant(options["tenant"])
        try:
            if options["action"] == "create":
                issued = services.create_api_key(
                    tenant,
                    livemode=options["mode"] == "live",
                    kind=options["kind"],
                    name=options["name"],
                    actor=CLI,
                )
                self.stdout.write(issued.plaintext)
            elif options["action"] == "list":
                for key in tenant.api_keys.all():
                    state = "revoked" if key.revoked_at else "active"
                    self.stdout.write(f"{key.public_id}  {key.prefix}…  {key.kind}  {state}  {key.name}")
            else:
                key = services.revoke_api_key(tenant, options["key_id"], actor=CLI)
                self.stdout.write(f"revoked {key.public_id}")
        except TurnusError as error:
            raise CommandError(error.message) from None
