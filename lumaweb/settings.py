"""Django settings for lumaweb, read from environment variables (see .env.example).

Nothing needs to be set for a local run: SQLite, the ORM job broker and the bundled Luma simulator.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONCE, NONE, SELF
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


# Everything lumaweb writes (the SQLite database and its WAL, the secret key, archived videos, keyframe uploads)
# is the team's and read only by lumaweb's own processes: nobody else on the machine gets to read it, including
# files under a DATABASE_URL or MEDIA_ROOT outside var/. Only tightens; a stricter umask stays.
os.umask(os.umask(0o077) | 0o077)
VAR_DIR = Path(env_str("LUMAWEB_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
if VAR_DIR.stat().st_mode & 0o077 and VAR_DIR.stat().st_uid == os.getuid():
    VAR_DIR.chmod(0o700)  # an install from before this rule: its database was world-readable

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
    "axes",
    "csp",
    "generations",
]

MIDDLEWARE = [
    "generations.security.forwarded_headers_middleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "generations.security.security_headers_middleware",
    # Before anything reads a body: CsrfViewMiddleware parses a whole POST, files included.
    "generations.uploads.RequestSizeLimitMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
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
                "generations.context_processors.csp_nonce",
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
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "generations:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# Dates and times read one way everywhere, the admin included: lumaweb/formats/en/formats.py.
FORMAT_MODULE_PATH = ["lumaweb.formats"]

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
# Login throttling (django-axes): 5 wrong passwords in a row for one username from one address pause that pair
# for 15 minutes; a success clears the count. Lockouts are listed in the admin; `manage.py axes_reset` clears them.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "generations.security.locked_out"
AXES_CLIENT_IP_CALLABLE = "generations.security.client_ip"
# A strict Content-Security-Policy: scripts and styles come only from our own static files (htmx included, through
# {% htmx_script %}, which carries the nonce); nothing is evaluated, framed or posted elsewhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "media-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}
# Proxies allowed to say what the client asked for (X-Forwarded-Proto / -For): a comma list of addresses or
# networks, "*" for any. Empty: nobody, and those headers are dropped. `manage.py up` hands the same list to the server.
FORWARDED_ALLOW_IPS = env_list("FORWARDED_ALLOW_IPS")
if FORWARDED_ALLOW_IPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- E-mail (notifications for people who opted in) ----------------------------------------------
# The console backend by default (mails are printed in the server's log); SMTP with
# EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and the EMAIL_HOST settings below.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "lumaweb <lumaweb@localhost>")

# --- Luma -----------------------------------------------------------------------------------------
# Dream Machine v1, under the names Luma's `lumaai` SDK reads. LUMA_BASE_URL is still read for v1 when LUMAAI_BASE_URL
# is unset (older installs), but Luma's `luma-agents` SDK reads that same name for the Agents host: prefer
# LUMAAI_BASE_URL, so one environment can never point one API's client at the other's host.
LUMAAI_API_KEY = env_str("LUMAAI_API_KEY")
LUMA_BASE_URL = (env_str("LUMAAI_BASE_URL") or env_str("LUMA_BASE_URL", "https://api.lumalabs.ai/dream-machine/v1")).rstrip("/")
# Luma's Agents API (Ray 3.2, Uni-1): its own key (the name Luma uses) and its own base URL setting.
LUMA_AGENTS_API_KEY = env_str("LUMA_AGENTS_API_KEY")
LUMA_AGENTS_BASE_URL = env_str("LUMA_AGENTS_BASE_URL", "https://agents.lumalabs.ai/v1").rstrip("/")
# How fast the Luma this site talks to runs against Luma itself: 1 for Luma; `manage.py up` sets it to the simulator's
# SIMULATOR_TIME_SCALE when it starts the simulator, so the first guesses of how long a generation takes (and with
# them the ETAs and, for the Agents API, which has no callbacks, the first poll) match the faster clock.
LUMA_TIME_SCALE = env_float("LUMAWEB_LUMA_TIME_SCALE", 1.0)
if not LUMA_TIME_SCALE > 0:
    raise ImproperlyConfigured(f"LUMAWEB_LUMA_TIME_SCALE must be above 0, not {LUMA_TIME_SCALE}")
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
# Served over HTTPS (by default when the public address is https://): plain HTTP is redirected, browsers are told
# to use HTTPS only (HSTS), and cookies are never sent over HTTP. HSTS for subdomains and preloading bind the whole
# domain, not just this site, so they are the operator's choice (off, and their deploy-check notes silenced).
HTTPS = env_bool("HTTPS", _public.scheme == "https")
if HTTPS:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
    SILENCED_SYSTEM_CHECKS = [check for check, on in (("security.W005", SECURE_HSTS_INCLUDE_SUBDOMAINS),
                                                      ("security.W021", SECURE_HSTS_PRELOAD)) if not on]
# Hosts the server may download assets from: Luma's CDN and whatever serves the configured API
# (the simulator in a local run). A forged callback cannot point the archiver anywhere else.
LUMA_ASSET_HOSTS = env_list("LUMA_ASSET_HOSTS", "storage.cdn-luma.com") + [urlsplit(LUMA_BASE_URL).netloc]
# The Agents API's outputs are presigned storage URLs (valid an hour); Luma does not name the storage host, so the
# default admits Amazon S3 and Luma's own domains ("*.host": any subdomain). Checked like every download.
LUMA_AGENTS_ASSET_HOSTS = env_list("LUMA_AGENTS_ASSET_HOSTS", "*.amazonaws.com,*.lumalabs.ai,*.cdn-luma.com") + [
    urlsplit(LUMA_AGENTS_BASE_URL).netloc]
# Asset host names (host or host:port) that may resolve to loopback, private or link-local addresses. Downloads
# refuse such addresses otherwise; the simulator's own host (a LUMA_BASE_URL on this machine) and IP addresses
# written in LUMA_ASSET_HOSTS are trusted without being listed here.
LUMA_TRUSTED_PRIVATE_HOSTS = env_list("LUMA_TRUSTED_PRIVATE_HOSTS")
LUMA_MAX_CONCURRENT = env_int("LUMA_MAX_CONCURRENT", 10)
LUMA_CREATES_PER_MINUTE = env_int("LUMA_CREATES_PER_MINUTE", 20)
# The Agents API's own limits (its documented defaults): a separate budget from Dream Machine's.
LUMA_AGENTS_MAX_CONCURRENT = env_int("LUMA_AGENTS_MAX_CONCURRENT", 10)
LUMA_AGENTS_CREATES_PER_MINUTE = env_int("LUMA_AGENTS_CREATES_PER_MINUTE", 30)
LUMA_AGENTS_READ_TIMEOUT = env_float("LUMA_AGENTS_READ_TIMEOUT", 60.0)
# How long a create whose answer was lost waits before the sweep decides nothing was made.
LUMA_RECONCILE_GRACE_SECONDS = env_int("LUMA_RECONCILE_GRACE_SECONDS", 120)
# After this long without progress, a submit or an archive counts as stalled and the sweep repairs it.
LUMA_STALL_SECONDS = env_int("LUMA_STALL_SECONDS", 120)
# While generations are in flight, one job worker follows them, polling each as it falls due; each run of that
# job lasts this long, then hands over to the next.
LUMA_FOLLOW_SECONDS = env_int("LUMA_FOLLOW_SECONDS", 50)
LUMA_CONNECT_TIMEOUT = env_float("LUMA_CONNECT_TIMEOUT", 5.0)
LUMA_READ_TIMEOUT = env_float("LUMA_READ_TIMEOUT", 30.0)
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 1024 * 1024
# The most images the create form sends at once: Photon's 4 image references, style reference, 4 character images and
# image to modify (Uni-1 takes 9 references, a Dream Machine video 2 keyframes).
UPLOAD_MAX_FILES = 10
# A signed-in person's request may carry that many images at the limit and the form (create.js says so before
# sending more); someone signed out has nothing to upload: two keyframes' worth. Anything larger is refused (413).
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", UPLOAD_MAX_FILES * UPLOAD_MAX_BYTES + 1024 * 1024)
SIGNED_OUT_REQUEST_MAX_BYTES = 2 * UPLOAD_MAX_BYTES + 1024 * 1024
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
    "filters": {"redact_tokens": {"()": "generations.logs.RedactTokens"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_tokens"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django_q": {"level": env_str("Q_LOG_LEVEL", "WARNING")},
        "axes": {"level": "WARNING"},  # failures and lockouts, not a banner at every start
    },
}
