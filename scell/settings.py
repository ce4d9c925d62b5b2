"""Scell settings: one module, read from the environment.

With nothing set, Scell runs on SQLite, an in-process Dramatiq broker and local-disk storage, so
``manage.py runserver`` works at once. Production sets ``DEBUG=0``, ``SECRET_KEY``, ``ALLOWED_HOSTS``,
``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` (the Dramatiq broker).
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)

# A production secret has no default: a forgotten SECRET_KEY must stop the process, not weaken it.
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-secret-key-change-me-0123456789")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("SECRET_KEY must be set to at least 32 characters when DEBUG=0")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "scell.errors.csrf_failure"
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_dramatiq",
    "dramatiq_crontab",
    "django_htmx",
    "scell",
    "billing",
    "invoicing",
    "signatures",
    "archive",
    "webhooks",
    "pdp",
    "pdp.simulator",
]

MIDDLEWARE = [
    "scell.observability.RequestIdMiddleware",
    "scell.ratelimit.IpRateLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "scell.tenancy.DashboardTenantMiddleware",
    "scell.i18n.DashboardLanguageMiddleware",
    "scell.dashboard.RequireTwoFactorMiddleware",
]

ROOT_URLCONF = "scell.urls"
WSGI_APPLICATION = "scell.wsgi.application"
ASGI_APPLICATION = "scell.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "scell.tenancy.dashboard_context",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
# PostgreSQL in production and in the test command; SQLite is the embedded default for a first look.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded default runs the web threads and the in-process workers (rendering, PDP transmission)
    # against one file: wait for a writer instead of failing at once, take the write lock when a
    # transaction begins (no deadlocking lock upgrades), and let readers go on while one writes (WAL).
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 30)
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    DATABASES["default"]["OPTIONS"].setdefault("init_command", "PRAGMA journal_mode=WAL;")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The per-issuer uniqueness of invoice numbers (NULLS NOT DISTINCT) exists on PostgreSQL only; SQLite,
# the embedded default for a first look, carries no fiscal guarantee (README, "Fiscal guarantees").
SILENCED_SYSTEM_CHECKS = ["models.W047"] if DATABASES["default"]["ENGINE"].endswith("sqlite3") else []

AUTH_USER_MODEL = "scell.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "dashboard:login"

# --- I18n ---------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = not DEBUG
# The data processing agreement (GDPR art. 28) tenants accept in Settings → Privacy; a new version asks
# every tenant to accept again.
DPA_VERSION = env.str("SCELL_DPA_VERSION", default="2026-01")
# API timestamps are UTC (API.md); fiscal dates (issue date, the YYYYMM of invoice numbers) and the
# dashboard use the business time zone.
TIME_ZONE = "UTC"
BUSINESS_TIME_ZONE = env.str("SCELL_BUSINESS_TIME_ZONE", default="Europe/Paris")
USE_I18N = True
USE_TZ = True

# --- Static and stored files ------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "media/"
# In development WhiteNoise serves straight from the app folders; production runs collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Background work ----------------------------------------------------------------------------
# REDIS_URL selects the Redis broker (workers: ``manage.py rundramatiq``). Without it, a stub broker
# and a worker thread inside the web process run the actors, so the embedded default needs nothing.
REDIS_URL = env.str("REDIS_URL", default="")
DRAMATIQ_BROKER_KIND = env.str("SCELL_DRAMATIQ_BROKER", default="redis" if REDIS_URL else "stub")
# The API's rate-limit counters are shared by every process through Redis (in memory without it).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "ratelimit": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ratelimit"},
}
if DRAMATIQ_BROKER_KIND not in {"redis", "stub"}:
    raise ImproperlyConfigured("SCELL_DRAMATIQ_BROKER must be 'redis' or 'stub'")
if DRAMATIQ_BROKER_KIND == "redis" and not REDIS_URL:
    raise ImproperlyConfigured("SCELL_DRAMATIQ_BROKER=redis needs REDIS_URL")
DRAMATIQ_BROKER = {
    "BROKER": "dramatiq.brokers.redis.RedisBroker"
    if DRAMATIQ_BROKER_KIND == "redis"
    else "dramatiq.brokers.stub.StubBroker",
    "OPTIONS": {"url": REDIS_URL} if DRAMATIQ_BROKER_KIND == "redis" else {},
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
        # Compiles the EN 16931 / BR-FR stylesheets once per worker process, after it booted
        # (saxonche must never start in a process that forks afterwards).
        "invoicing.validation.warmup.WarmUpMiddleware",
    ],
}
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]
# Run actors in a thread of the web process when the broker is the in-process stub.
DRAMATIQ_INPROCESS_WORKER = env.bool("SCELL_INPROCESS_WORKER", default=DRAMATIQ_BROKER_KIND == "stub")

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "scell.authentication.SecretKeyAuthentication",
        "scell.authentication.PublishableKeyAuthentication",
        "scell.authentication.TenantKeyAuthentication",
        "scell.authentication.DashboardSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["scell.permissions.HasTenantScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON in (API.md); the few file uploads name their multipart parser on the view.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "scell.pagination.CursorPagination",
    "PAGE_SIZE": 25,
    "EXCEPTION_HANDLER": "scell.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
    # ``?format=`` belongs to the download endpoint (facturx, cii, ubl...), not to content negotiation.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["scell.ratelimit.KeyRateThrottle"],
}
# Requests per minute (scell/ratelimit.py); 0 switches a limit off.
RATE_LIMIT_PER_KEY = env.int("SCELL_RATE_LIMIT_PER_KEY", default=6000)
RATE_LIMIT_PER_IP = env.int("SCELL_RATE_LIMIT_PER_IP", default=12000)
# How many reverse proxies in front of Scell append to X-Forwarded-For (0: REMOTE_ADDR is the client).
TRUSTED_PROXIES = env.int("SCELL_TRUSTED_PROXIES", default=0)
SPECTACULAR_SETTINGS = {
    "TITLE": "Scell API",
    "DESCRIPTION": "E-invoicing (Factur-X, UBL, CII) and electronic signatures. See API.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Enums first (drf-spectacular's own hook), then what every operation shares: the error object,
    # 401/404/429 answers, X-Request-Id, Idempotency-Key (scell/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "scell.schema.common_responses_hook",
        "scell.schema.examples_hook",
    ],
    # Swagger UI assets are served by Scell itself (no CDN): the docs work offline and behind a CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "ENUM_NAME_OVERRIDES": {
        "ApiKeyKindEnum": "scell.models.ApiKey.Kind",
        "LedgerEntryKindEnum": "billing.models.LedgerEntry.Kind",
        "SignatureRequestStatusEnum": "signatures.models.SignatureRequest.Status",
        "SignerStatusEnum": "signatures.models.Signer.Status",
    },
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
}
# How long a stored Idempotency-Key answer is replayed.
IDEMPOTENCY_TTL_HOURS = env.int("IDEMPOTENCY_TTL_HOURS", default=24)
# last_used_at of an API key is written at most this often, not on every request.
API_KEY_LAST_USED_RESOLUTION_SECONDS = env.int("API_KEY_LAST_USED_RESOLUTION_SECONDS", default=60)

# --- Security -----------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
OTP_TOTP_ISSUER = "Scell"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Scell <no-reply@scell.localhost>")
# SMTP (EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend): invitations, password resets, signers.
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)

# Structured logs: one JSON object per line (``LOG_FORMAT=json``, the default in production) or plain text
# (the default with DEBUG); every line carries the request id of the request that wrote it.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'text'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "scell.observability.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "scell.observability.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Our access log (scell.request) replaces the dev server's and Django's own request lines.
        "django.server": {"level": "WARNING"},
        # WeasyPrint reports every rendering step at INFO.
        "weasyprint": {"level": "WARNING"},
        "weasyprint.progress": {"level": "WARNING"},
    },
}

# --- Billing ------------------------------------------------------------------------------------
# Prices are configuration; each spend entry records the price it was charged at.
PRICE_INVOICE_ISSUE = env.str("SCELL_PRICE_INVOICE_ISSUE", default="0.04")
PRICE_SIGNATURE_SIGNER = env.str("SCELL_PRICE_SIGNATURE_SIGNER", default="1.20")
CREDIT_PACKS = env.list("SCELL_CREDIT_PACKS", default=["50.00", "100.00", "250.00", "500.00", "1000.00"])
CREDIT_PACK_MINIMUM = env.str("SCELL_CREDIT_PACK_MINIMUM", default="50.00")
CREDIT_LOT_VALIDITY_MONTHS = env.int("SCELL_CREDIT_LOT_VALIDITY_MONTHS", default=12)
CREDIT_LOW_BALANCE_DEFAULT = env.str("SCELL_CREDIT_LOW_BALANCE_DEFAULT", default="5.00")
# VAT charged on credit packs (Scell's own invoice to the buyer, BR-S rate).
CREDIT_PACK_VAT_RATE = env.str("SCELL_CREDIT_PACK_VAT_RATE", default="20.00")
# "sandbox" pays instantly with test card numbers (never in production); "stripe" is Stripe Checkout.
PAYMENT_PROVIDER = env.str("SCELL_PAYMENT_PROVIDER", default="sandbox" if DEBUG else "stripe")
if PAYMENT_PROVIDER not in {"sandbox", "stripe"}:
    raise ImproperlyConfigured("SCELL_PAYMENT_PROVIDER must be 'sandbox' or 'stripe'")
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Only for tests against a local Stripe-compatible server.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
if PAYMENT_PROVIDER == "stripe" and not DEBUG and not (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET):
    raise ImproperlyConfigured("Stripe Checkout needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET")
DRAMATIQ_CRONTAB = {"REDIS_URL": REDIS_URL} if REDIS_URL else {}

# --- Archive: timestamping ---
# Daily closures are sealed by OpenTimestamps calendars (POST /digest, GET /timestamp/<hex>); the
# public ones by default. At least OTS_MIN_CALENDARS must answer, else the closure stays pending and
# is submitted again later.
OTS_CALENDAR_URLS = env.list(
    "SCELL_OTS_CALENDAR_URLS",
    default=[
        "https://a.pool.opentimestamps.org",
        "https://b.pool.opentimestamps.org",
        "https://a.pool.eternitywall.com",
    ],
)
OTS_MIN_CALENDARS = env.int("SCELL_OTS_MIN_CALENDARS", default=min(2, len(OTS_CALENDAR_URLS)))
if not 1 <= OTS_MIN_CALENDARS <= len(OTS_CALENDAR_URLS):
    raise ImproperlyConfigured("SCELL_OTS_MIN_CALENDARS must be between 1 and the number of calendars")
OTS_TIMEOUT = env.float("SCELL_OTS_TIMEOUT", default=10.0)
# Optional RFC 3161 time-stamping authority (e.g. https://freetsa.org/tsr); empty: not used.
TSA_URL = env.str("SCELL_TSA_URL", default="")
TSA_TIMEOUT = env.float("SCELL_TSA_TIMEOUT", default=10.0)

# --- Archive: storage ---
# Three storages: "default" (active files), "archive" (fiscal archive, write once: S3 Object Lock
# COMPLIANCE when ARCHIVE_S3_BUCKET is set, else read-only files under var/archive that Scell refuses to
# overwrite or delete) and "backups" (database dumps, pruned after BACKUP_RETENTION_DAYS).
# Invoices are kept 10 years (Code de commerce L123-22, CGI L102 B); 11 covers the end of the year.
ARCHIVE_RETENTION_YEARS = env.int("SCELL_ARCHIVE_RETENTION_YEARS", default=11)
if ARCHIVE_RETENTION_YEARS < 10:
    raise ImproperlyConfigured(
        "SCELL_ARCHIVE_RETENTION_YEARS below 10 breaks the legal retention of invoices"
    )
BACKUP_RETENTION_DAYS = env.int("SCELL_BACKUP_RETENTION_DAYS", default=30)
ARCHIVE_ROOT = env.path("ARCHIVE_ROOT", default=str(VAR_DIR / "archive"))
BACKUPS_ROOT = env.path("BACKUPS_ROOT", default=str(VAR_DIR / "backups"))
ARCHIVE_S3_BUCKET = env.str("ARCHIVE_S3_BUCKET", default="")
BACKUPS_S3_BUCKET = env.str("BACKUPS_S3_BUCKET", default="")
# django-storages option names, from the usual AWS_* variables; unset keys fall back to boto3's own
# credential chain (environment, instance profile).
_ARCHIVE_S3_OPTIONS = {
    option: value
    for option, value in {
        "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=""),
        "region_name": env.str("AWS_S3_REGION_NAME", default=""),
        "access_key": env.str("AWS_S3_ACCESS_KEY_ID", default=env.str("AWS_ACCESS_KEY_ID", default="")),
        "secret_key": env.str(
            "AWS_S3_SECRET_ACCESS_KEY", default=env.str("AWS_SECRET_ACCESS_KEY", default="")
        ),
    }.items()
    if value
}
STORAGES["archive"] = (
    {
        "BACKEND": "archive.storage.WormS3Storage",
        "OPTIONS": {"bucket_name": ARCHIVE_S3_BUCKET, "location": "archive", **_ARCHIVE_S3_OPTIONS},
    }
    if ARCHIVE_S3_BUCKET
    else {"BACKEND": "archive.storage.WormFileSystemStorage", "OPTIONS": {"location": str(ARCHIVE_ROOT)}}
)
STORAGES["backups"] = (
    {
        "BACKEND": "archive.storage.BackupS3Storage",
        "OPTIONS": {"bucket_name": BACKUPS_S3_BUCKET, "location": "backups", **_ARCHIVE_S3_OPTIONS},
    }
    if BACKUPS_S3_BUCKET
    else {"BACKEND": "archive.storage.BackupFileSystemStorage", "OPTIONS": {"location": str(BACKUPS_ROOT)}}
)

# --- Webhooks ---
import ipaddress as _ipaddress  # noqa: E402 - kept in this block, the only user

# Deliveries are POSTed with this timeout (seconds, whole exchange) and retried after these delays
# (about 3 days in all, issue 6); the endpoint is disabled after WEBHOOK_DISABLE_AFTER_HOURS of failures.
WEBHOOK_TIMEOUT = env.float("SCELL_WEBHOOK_TIMEOUT", default=10.0)
WEBHOOK_RETRY_SCHEDULE = [
    float(delay)
    for delay in env.list(
        "SCELL_WEBHOOK_RETRY_SCHEDULE", default=["5", "60", "600", "3600", "21600", "43200", "86400", "86400"]
    )
]
WEBHOOK_DISABLE_AFTER_HOURS = env.int("SCELL_WEBHOOK_DISABLE_AFTER_HOURS", default=72)
# Live endpoints may not target private, loopback or link-local addresses (SSRF); these hosts and
# networks are exempt (development, tests, an operator's own internal receivers).
WEBHOOK_ALLOWED_PRIVATE_HOSTS = env.list("SCELL_WEBHOOK_ALLOWED_PRIVATE_HOSTS", default=[])
WEBHOOK_ALLOWED_PRIVATE_CIDRS = env.list("SCELL_WEBHOOK_ALLOWED_PRIVATE_CIDRS", default=[])
for _cidr in WEBHOOK_ALLOWED_PRIVATE_CIDRS:
    try:
        _ipaddress.ip_network(_cidr, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"SCELL_WEBHOOK_ALLOWED_PRIVATE_CIDRS: {_exc}") from None
# At most this much of a receiver's answer is read; the first WEBHOOK_STORED_RESPONSE_BYTES are kept.
WEBHOOK_MAX_RESPONSE_BYTES = 64 * 1024
WEBHOOK_STORED_RESPONSE_BYTES = 2 * 1024

# --- Signatures: SMS ---
# Signers confirm with a one-time code sent by SMS. The console backend prints the code (development);
# production posts to the operator's gateway, so DEBUG=0 without a gateway URL and key stops the process
# instead of writing signing codes to the logs. Set SCELL_SMS_BACKEND to override either default.
SIGNATURE_SMS_BACKEND = env.str(
    "SCELL_SMS_BACKEND",
    default="signatures.sms.ConsoleSmsBackend" if DEBUG else "signatures.sms.HttpGatewaySmsBackend",
)
SIGNATURE_SMS_GATEWAY_URL = env.str("SCELL_SMS_GATEWAY_URL", default="")
SIGNATURE_SMS_GATEWAY_KEY = env.str("SCELL_SMS_GATEWAY_KEY", default="")
# Alphanumeric sender id shown on the phone (at most 11 characters on most networks).
SIGNATURE_SMS_SENDER = env.str("SCELL_SMS_SENDER", default="Scell")
SIGNATURE_SMS_TIMEOUT = env.float("SCELL_SMS_TIMEOUT", default=10.0)
if (
    SIGNATURE_SMS_BACKEND == "signatures.sms.HttpGatewaySmsBackend"
    and not DEBUG
    and not (SIGNATURE_SMS_GATEWAY_URL and SIGNATURE_SMS_GATEWAY_KEY)
):
    raise ImproperlyConfigured("The SMS gateway needs SCELL_SMS_GATEWAY_URL and SCELL_SMS_GATEWAY_KEY")

# --- Signatures ---
# The signing code: 6 digits from `secrets`, valid 10 minutes, at most 5 wrong attempts per signer (then
# the link locks), a new code at most every 60 s, and hourly caps per phone number and per IP address.
SIGNATURE_OTP_TTL_SECONDS = env.int("SCELL_SIGNATURE_OTP_TTL_SECONDS", default=600)
SIGNATURE_OTP_MAX_ATTEMPTS = env.int("SCELL_SIGNATURE_OTP_MAX_ATTEMPTS", default=5)
SIGNATURE_OTP_RESEND_COOLDOWN_SECONDS = env.int("SCELL_SIGNATURE_OTP_RESEND_COOLDOWN_SECONDS", default=60)
SIGNATURE_OTP_MAX_PER_PHONE_HOUR = env.int("SCELL_SIGNATURE_OTP_MAX_PER_PHONE_HOUR", default=5)
SIGNATURE_OTP_MAX_PER_IP_HOUR = env.int("SCELL_SIGNATURE_OTP_MAX_PER_IP_HOUR", default=30)
SIGNATURE_MAX_SIGNERS = env.int("SCELL_SIGNATURE_MAX_SIGNERS", default=20)
SIGNATURE_DEFAULT_EXPIRY_DAYS = env.int("SCELL_SIGNATURE_DEFAULT_EXPIRY_DAYS", default=30)
SIGNATURE_MAX_EXPIRY_DAYS = env.int("SCELL_SIGNATURE_MAX_EXPIRY_DAYS", default=365)
# Signers' phone numbers are kept as long as a signature can be contested (5 years, Code civil art.
# 2224), then erased; the evidence keeps only the masked number.
SIGNATURE_PHONE_RETENTION_DAYS = env.int("SCELL_SIGNATURE_PHONE_RETENTION_DAYS", default=5 * 365 + 2)
# Sealed documents and evidence files stay in the WORM archive this long after the request ended.
SIGNATURE_ARCHIVE_RETENTION_YEARS = env.int("SCELL_SIGNATURE_ARCHIVE_RETENTION_YEARS", default=11)

# --- Signatures: PDF seal ---
# Uploads for signature are refused beyond these limits (signatures.pdf.inspect_pdf).
SIGNATURE_MAX_PDF_BYTES = env.int("SCELL_SIGNATURE_MAX_PDF_BYTES", default=20 * 1024 * 1024)
SIGNATURE_MAX_PDF_PAGES = env.int("SCELL_SIGNATURE_MAX_PDF_PAGES", default=200)
# The platform's PAdES seal: a PKCS#12 (key + certificate, optionally its chain). Unset, a self-signed
# development seal is generated under SIGNATURE_DEV_SEAL_DIR when DEBUG is on (or
# SCELL_SIGNATURE_ALLOW_DEV_SEAL=1); in production a missing certificate stops sealing instead.
SIGNATURE_SEAL_PKCS12 = env.str("SCELL_SIGNATURE_SEAL_PKCS12", default="")
SIGNATURE_SEAL_PKCS12_PASSWORD = env.str("SCELL_SIGNATURE_SEAL_PKCS12_PASSWORD", default="")
SIGNATURE_ALLOW_DEV_SEAL = env.bool("SCELL_SIGNATURE_ALLOW_DEV_SEAL", default=DEBUG)
SIGNATURE_DEV_SEAL_DIR = Path(env.str("SCELL_SIGNATURE_DEV_SEAL_DIR", default=str(VAR_DIR / "seal")))
# RFC 3161 TSA for PAdES B-T seals (empty: B-B). A timestamp is reported only when its TSA chains to
# SIGNATURE_TSA_TRUST_ROOTS (PEM/DER files), or to the operating system's roots when that list is empty.
SIGNATURE_TSA_URL = env.str("SCELL_SIGNATURE_TSA_URL", default="")
SIGNATURE_TSA_TRUST_ROOTS = env.list("SCELL_SIGNATURE_TSA_TRUST_ROOTS", default=[])

# --- PDP: transmission and lifecycle (AFNOR XP Z12-013 Flow Service) ---
import hashlib as _hashlib  # noqa: E402 - kept in this block, the only user

# Live invoices go to the partner PDP at PDP_URL (base URL up to the service name, without "/v1", e.g.
# https://api.flow.pdp.example/flow-service). It authenticates with a static bearer token (PDP_TOKEN) or
# with OAuth2 client credentials (PDP_TOKEN_URL + PDP_CLIENT_ID + PDP_CLIENT_SECRET). Unset, live
# transmissions wait ("held") until it is configured; sandbox invoices never go there.
PDP_URL = env.str("SCELL_PDP_URL", default="").rstrip("/")
PDP_TOKEN = env.str("SCELL_PDP_TOKEN", default="")
PDP_TOKEN_URL = env.str("SCELL_PDP_TOKEN_URL", default="")
PDP_CLIENT_ID = env.str("SCELL_PDP_CLIENT_ID", default="")
PDP_CLIENT_SECRET = env.str("SCELL_PDP_CLIENT_SECRET", default="")
# Seconds for connecting and for the whole answer of one call.
PDP_CONNECT_TIMEOUT = env.float("SCELL_PDP_CONNECT_TIMEOUT", default=5.0)
PDP_TIMEOUT = env.float("SCELL_PDP_TIMEOUT", default=30.0)
# Sandbox invoices go to the built-in simulator: in process when this is empty, else over HTTP to this
# base URL (a simulator served by another Scell, e.g. ".../pdp-sim/flow-service").
PDP_SANDBOX_URL = env.str("SCELL_PDP_SANDBOX_URL", default="").rstrip("/")
# Public base URL of this Scell that the PDP may call back (its webhooks): SITE_URL by default. Empty
# string: no webhook subscription, statuses and incoming invoices are polled only.
PDP_CALLBACK_URL = env.str("SCELL_PDP_CALLBACK_URL", default=SITE_URL).rstrip("/")
# Polling of incoming flows (statuses, supplier invoices), also the safety net under webhooks.
PDP_POLL_SECONDS = env.int("SCELL_PDP_POLL_SECONDS", default=300)
# A submission that fails on the network or with a 5xx/429 is retried after these delays (seconds).
PDP_RETRY_SCHEDULE = [
    float(delay)
    for delay in env.list("SCELL_PDP_RETRY_SCHEDULE", default=["10", "60", "300", "1800", "7200", "21600"])
]

# The built-in PDP simulator (the sandbox's PDP, and the tests'). Sandbox invoices reach it in process
# whatever this says; PDP_SIMULATOR_ENABLED also serves it over HTTP under /pdp-sim/ (development, tests,
# or a shared sandbox simulator). Its bearer token and OAuth2 client secret derive from SECRET_KEY.
PDP_SIMULATOR_ENABLED = env.bool("SCELL_PDP_SIMULATOR_ENABLED", default=DEBUG)
PDP_SIMULATOR_TOKEN = env.str(
    "SCELL_PDP_SIMULATOR_TOKEN",
    default=_hashlib.sha256(f"pdp-simulator-token:{SECRET_KEY}".encode()).hexdigest(),
)
PDP_SIMULATOR_CLIENT_ID = env.str("SCELL_PDP_SIMULATOR_CLIENT_ID", default="scell-sandbox")
PDP_SIMULATOR_CLIENT_SECRET = env.str(
    "SCELL_PDP_SIMULATOR_CLIENT_SECRET",
    default=_hashlib.sha256(f"pdp-simulator-client:{SECRET_KEY}".encode()).hexdigest(),
)
# Seconds between the statuses the simulator plays by itself after accepting an invoice
# (200 Déposée at once, then 202 Reçue, then 203 Mise à disposition).
PDP_SIMULATOR_STEP_SECONDS = env.int("SCELL_PDP_SIMULATOR_STEP_SECONDS", default=30)
PDP_SIMULATOR_MAX_FLOW_BYTES = env.int("SCELL_PDP_SIMULATOR_MAX_FLOW_BYTES", default=100 * 1024 * 1024)
