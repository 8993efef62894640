"""Where rendered documents are kept: the ``documents`` entry of ``settings.STORAGES`` (any Django storage
backend; ``TURNUS_DOCUMENT_STORAGE`` names its class), the file system under the var directory by default.

Files are named by invoice, format and content hash, so a name always holds the same bytes: a render that
finds its file already stored (e.g. after a crash between writing the file and recording it) reuses it.
"""

from __future__ import annotations

from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty

ALIAS = "documents"


class _DocumentStorage(LazyObject):  # type: ignore[type-arg]
    def _setup(self) -> None:
        self._wrapped = storages[ALIAS]


_storage = _DocumentStorage()


def document_storage() -> Storage:
    """The storage of ``Document.file`` (looked up lazily, so settings overrides in tests apply)."""
    return _storage  # type: ignore[return-value]


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "STORAGES":
        _storage._wrapped = empty  # type: ignore[assignment]


def file_name(tenant: str, livemode: bool, invoice: str, kind: str, sha256: str, extension: str) -> str:
    mode = "live" if livemode else "test"
    return f"{tenant}/{mode}/{invoice}/{kind}-{sha256[:16]}.{extension}"


def store(name: str, content: bytes) -> str:
    """Write ``content`` under ``name`` unless that file exists already (same name, same bytes); the name
    the storage keeps it under."""
    storage = document_storage()
    if storage.exists(name):
        return name
    return storage.save(name, ContentFile(content))


def read(name: str) -> bytes:
    with document_storage().open(name, "rb") as handle:
        data: bytes = handle.read()
    return data


def delete(name: str) -> None:
    document_storage().delete(name)
