"""Django settings, read from ``TURNUS_*`` environment variables.

- ``TURNUS_DATABASE_URL``: e.g. ``postgresql://postgres@127.0.0.1:5432/turnus``; default SQLite in ``./var/``.
- ``TURNUS_SECRET_KEY``: signing key; without it a random key is generated once in ``var/secret_key``.
- ``TURNUS_DEBUG``: ``1``/``true`` for development.
- ``TURNUS_ALLOWED_HOSTS``: comma-separated host names.
- ``TURNUS_VAR_DIR``: where SQLite, uploads and queues live (default ``./var``).
- ``TURNUS_DOCUMENT_STORAGE``: storage backend class for rendered invoice documents (default: files in var/).
- ``TURNUS_QUEUE_URL``: e.g. ``redis://127.0.0.1:6379/0`` for the job queue; default SQLite in ``./var/``.
- ``TURNUS_EMAIL_URL``: how invoices are e-mailed, e.g. ``smtp://user:password@mail.example.com:587?tls=1``
  (``smtps://`` for implicit TLS, ``console://``, ``file:///some/dir``); or ``TURNUS_SMTP_HOST``, ``_PORT``,
  ``_USER``, ``_PASSWORD``, ``_TLS`` (``starttls``/``ssl``/``0``). Default: ``.eml`` files in ``./var/mail/``.
- ``TURNUS_EMAIL_FROM``: the From address of invoice e-mails (default: the tenant's e-mail address).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

PACKAGE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TURNUS_VAR_DIR", "var")).resolve()


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """``TURNUS_SECRET_KEY``, or a random key generated once and kept in ``var/secret_key``."""
    key = os.environ.get("TURNUS_SECRET_KEY", "").strip()
    if key:
        return key
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


DEBUG = _flag("TURNUS_DEBUG")
SECRET_KEY = _secret_key()

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("TURNUS_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "ninja",
    "turnus.core",
    "turnus.apps.tenants",
    "turnus.apps.catalog",
    "turnus.apps.customers",
    "turnus.apps.subscriptions",
    "turnus.apps.metering",
    "turnus.apps.billing",
    "turnus.apps.documents",
    "turnus.apps.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "turnus.core.http.RefuseNulMiddleware",
    "turnus.core.idempotency.IdempotencyMiddleware",
]
# /v1/ (bearer keys, no cookies or pages) is served with this shorter chain; see turnus.project.wsgi.
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "turnus.core.http.RefuseNulMiddleware",
    "turnus.core.idempotency.IdempotencyMiddleware",
]

TURNUS_SCOPE_RESOLVER = "turnus.apps.tenants.auth.scope_from_request"

ROOT_URLCONF = "turnus.project.urls"
WSGI_APPLICATION = "turnus.project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_settings() -> dict[str, object]:
    url = os.environ.get("TURNUS_DATABASE_URL") or f"sqlite:///{VAR_DIR / 'turnus.sqlite3'}"
    config: dict[str, object] = dict(dj_database_url.parse(url, conn_max_age=60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
            "transaction_mode": "IMMEDIATE",
        }
        config["TEST"] = {"NAME": None}
    else:
        config["CONN_HEALTH_CHECKS"] = True
        # Statements run twice on a connection become prepared: PostgreSQL stops re-planning every lookup.
        config["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 2}
    return config


DATABASES = {"default": _database_settings()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("de", _("German"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Rendered invoice documents (PDF, e-invoice XML): any Django storage backend named by its class in
# TURNUS_DOCUMENT_STORAGE (configured by that backend's own settings), the file system under var/ by default.
_DOCUMENT_STORAGE = os.environ.get("TURNUS_DOCUMENT_STORAGE", "").strip()
STORAGES["documents"] = (
    {"BACKEND": _DOCUMENT_STORAGE}
    if _DOCUMENT_STORAGE
    else {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "documents")},
    }
)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Jobs (huey, see turnus.core.jobs): SQLite storage by default, Redis with TURNUS_QUEUE_URL.
_QUEUE_URL = os.environ.get("TURNUS_QUEUE_URL", "").strip()
HUEY: dict[str, object] = (
    {"huey_class": "huey.RedisHuey", "name": "turnus", "url": _QUEUE_URL}
    if _QUEUE_URL
    else {"huey_class": "huey.SqliteHuey", "name": "turnus", "filename": str(VAR_DIR / "huey.sqlite3")}
)


# E-mail (invoice delivery, see turnus.apps.documents.delivery): SMTP from TURNUS_EMAIL_URL or TURNUS_SMTP_*;
# without either, messages are written as .eml files to var/mail/, so no setup needs a mail server.
_EMAIL_SCHEMES = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "smtps": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "dummy": "django.core.mail.backends.dummy.EmailBackend",
}


def _email_settings() -> dict[str, object]:
    from urllib.parse import parse_qs, unquote, urlsplit

    from django.core.exceptions import ImproperlyConfigured

    url = os.environ.get("TURNUS_EMAIL_URL", "").strip()
    host = os.environ.get("TURNUS_SMTP_HOST", "").strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme not in _EMAIL_SCHEMES:
            raise ImproperlyConfigured(f"TURNUS_EMAIL_URL: unknown scheme {parts.scheme!r}")
        config: dict[str, object] = {"EMAIL_BACKEND": _EMAIL_SCHEMES[parts.scheme]}
        if parts.scheme == "file":
            config["EMAIL_FILE_PATH"] = unquote(parts.path) or str(VAR_DIR / "mail")
        elif parts.scheme in {"smtp", "smtps"}:
            query = {name: values[-1].lower() for name, values in parse_qs(parts.query).items()}
            ssl = parts.scheme == "smtps" or query.get("ssl") in {"1", "true", "yes"}
            config |= {
                "EMAIL_HOST": parts.hostname or "localhost",
                "EMAIL_PORT": parts.port or (465 if ssl else 25),
                "EMAIL_HOST_USER": unquote(parts.username or ""),
                "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
                "EMAIL_USE_SSL": ssl,
                "EMAIL_USE_TLS": not ssl and query.get("tls") in {"1", "true", "yes", "starttls"},
            }
        return config
    if host:
        port = int(os.environ.get("TURNUS_SMTP_PORT") or 0) or None
        tls = os.environ.get("TURNUS_SMTP_TLS", "").strip().lower()
        if not tls:
            tls = {465: "ssl", 587: "starttls"}.get(port or 0, "0")
        if tls not in {"ssl", "starttls", "1", "true", "yes", "0", "false", "no", "off"}:
            raise ImproperlyConfigured("TURNUS_SMTP_TLS takes starttls, ssl or 0")
        return {
            "EMAIL_BACKEND": _EMAIL_SCHEMES["smtp"],
            "EMAIL_HOST": host,
            "EMAIL_PORT": port or (465 if tls == "ssl" else 25),
            "EMAIL_HOST_USER": os.environ.get("TURNUS_SMTP_USER", ""),
            "EMAIL_HOST_PASSWORD": os.environ.get("TURNUS_SMTP_PASSWORD", ""),
            "EMAIL_USE_SSL": tls == "ssl",
            "EMAIL_USE_TLS": tls in {"starttls", "1", "true", "yes"},
        }
    return {"EMAIL_BACKEND": _EMAIL_SCHEMES["file"], "EMAIL_FILE_PATH": str(VAR_DIR / "mail")}


globals().update(_email_settings())
EMAIL_TIMEOUT = int(os.environ.get("TURNUS_SMTP_TIMEOUT") or 30)
TURNUS_EMAIL_FROM = os.environ.get("TURNUS_EMAIL_FROM", "").strip()
DEFAULT_FROM_EMAIL = "noreply@localhost"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("TURNUS_LOG_LEVEL", "INFO")},
}
