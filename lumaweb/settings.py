"""Django settings for lumaweb, read from environment variables (see .env.example).

Nothing needs to be set for a local run: SQLite, the ORM job broker and the bundled Luma simulator.
"""

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name)
    if not value:
        return default
    return value.lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = env_str(name)
    return float(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


VAR_DIR = Path(env_str("LUMAWEB_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG")


def _secret_key() -> str:
    """The configured key, or one generated once per install and kept in var/ (never a shared default)."""
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    key = key_file.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"SECRET_KEY is not set and {key_file} is empty.")
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "django_q",
    "generations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Before anything reads a body: CsrfViewMiddleware parses a whole POST, files included.
    "generations.uploads.RequestSizeLimitMiddleware",
]

ROOT_URLCONF = "lumaweb.urls"
WSGI_APPLICATION = "lumaweb.wsgi.application"
ASGI_APPLICATION = "lumaweb.asgi.application"

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
            ],
        },
    },
]

# SQLite by default. WAL lets readers work beside the one writer, IMMEDIATE transactions take the
# write lock up front (no deadlock-on-upgrade), and the timeout makes a writer wait instead of
# failing with "database is locked" while a job worker holds the lock.
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {**SQLITE_OPTIONS, **DATABASES["default"].get("OPTIONS", {})}
    # A file, not memory, so a job cluster in another process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
DATABASES["default"]["TEST"] = {
    **DATABASES["default"].get("TEST", {}),
    **({"NAME": env_str("TEST_DATABASE_NAME")} if env_str("TEST_DATABASE_NAME") else {}),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "generations:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Unhashed names still resolve (served through the finders) when collectstatic has not run yet.
WHITENOISE_MANIFEST_STRICT = False
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", DEBUG)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if env_bool("SECURE_COOKIES"):
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Luma -----------------------------------------------------------------------------------------
LUMAAI_API_KEY = env_str("LUMAAI_API_KEY")
LUMA_BASE_URL = env_str("LUMA_BASE_URL", "https://api.lumalabs.ai/dream-machine/v1").rstrip("/")
# The address Luma can reach for callbacks and keyframe images.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# The public address is this site's own: Luma's callbacks and the team's form posts arrive under it (often
# through a TLS-terminating proxy), so its host is allowed and its origin trusted without extra settings.
_public = urlsplit(PUBLIC_BASE_URL)
if _public.hostname:
    _public_host = f"[{_public.hostname}]" if ":" in _public.hostname else _public.hostname
    if _public_host not in ALLOWED_HOSTS and "*" not in ALLOWED_HOSTS:
        ALLOWED_HOSTS.append(_public_host)
    CSRF_TRUSTED_ORIGINS.append(f"{_public.scheme}://{_public.netloc}")
# Hosts the server may download assets from: Luma's CDN and whatever serves the configured API
# (the simulator in a local run). A forged callback cannot point the archiver anywhere else.
LUMA_ASSET_HOSTS = env_list("LUMA_ASSET_HOSTS", "storage.cdn-luma.com") + [urlsplit(LUMA_BASE_URL).netloc]
# Asset host names (host or host:port) that may resolve to loopback, private or link-local addresses. Downloads
# refuse such addresses otherwise; the simulator's own host (a LUMA_BASE_URL on this machine) and IP addresses
# written in LUMA_ASSET_HOSTS are trusted without being listed here.
LUMA_TRUSTED_PRIVATE_HOSTS = env_list("LUMA_TRUSTED_PRIVATE_HOSTS")
LUMA_MAX_CONCURRENT = env_int("LUMA_MAX_CONCURRENT", 10)
LUMA_CREATES_PER_MINUTE = env_int("LUMA_CREATES_PER_MINUTE", 20)
# How long a create whose answer was lost waits before the sweep decides nothing was made.
LUMA_RECONCILE_GRACE_SECONDS = env_int("LUMA_RECONCILE_GRACE_SECONDS", 120)
# After this long without progress, a submit or an archive counts as stalled and the sweep repairs it.
LUMA_STALL_SECONDS = env_int("LUMA_STALL_SECONDS", 120)
LUMA_CONNECT_TIMEOUT = env_float("LUMA_CONNECT_TIMEOUT", 5.0)
LUMA_READ_TIMEOUT = env_float("LUMA_READ_TIMEOUT", 30.0)
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 1024 * 1024
# A request may carry two keyframes and the form; anything larger is refused (413) before it is read.
REQUEST_MAX_BYTES = 2 * UPLOAD_MAX_BYTES + 1024 * 1024
# Accepted uploads stay in memory (Pillow reads them whole anyway) instead of going through temporary files.
FILE_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES

# --- Jobs (django-q2) -----------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
Q_TIMEOUT = env_int("Q_TIMEOUT", 600)
Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "lumaweb"),
    "workers": env_int("Q_WORKERS", 4),
    "recycle": 500,
    # A task running longer than timeout is killed; retry must be longer, or a slow task would be
    # handed to a second worker while the first still runs.
    "timeout": Q_TIMEOUT,
    "retry": env_int("Q_RETRY", Q_TIMEOUT + 60),
    "max_attempts": 5,
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "poll": 0.5,
    "label": "Jobs",
    "sync": env_bool("Q_SYNC"),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django_q": {"level": env_str("Q_LOG_LEVEL", "WARNING")}},
}
