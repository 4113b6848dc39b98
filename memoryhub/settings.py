"""MemoryHub settings: one file, every value read from the environment through typed helpers.

See README.md ("Configuration") for the variables. Nothing secret is committed: the secret key
comes from MEMORYHUB_SECRET_KEY(_FILE) or is generated once into the data directory.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from kernel.database import postgres_database, sqlite_options
from kernel.datadir import default_data_dir, ensure_dir, persisted_secret_key
from kernel.env import env_bool, env_choice, env_int, env_list, env_path, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("MEMORYHUB_DEBUG", False)
DATA_DIR = ensure_dir(env_path("MEMORYHUB_DATA_DIR", default_data_dir(BASE_DIR)))
SECRET_KEY = env_secret("MEMORYHUB_SECRET_KEY") or persisted_secret_key(DATA_DIR)
ALLOWED_HOSTS = env_list("MEMORYHUB_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("MEMORYHUB_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # First, so its `runserver` (daphne's, imported only when it runs) overrides staticfiles'.
    # Daphne itself is not an installed app: its AppConfig imports the whole server (Twisted)
    # into every process, every command and embedding worker included.
    "memoryhub",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "access",
    "graph",
    "mcp_endpoint",
    "vectors",
    "memory",
    "agents",
    # The OAuth 2.1 authorization server for remote MCP clients (access/oauth.py).
    "oauth2_provider",
]

MIDDLEWARE = [
    # First: request id and per-surface HTTP metrics of every Django request (kernel/observability.py).
    "kernel.observability.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Secure cookies over TLS, a Content-Security-Policy on pages (kernel/security.py).
    "kernel.security.SecurityHeadersMiddleware",
    # Serves /static/ (admin, docs, self-service CSS) from the same process: `make run` needs no
    # separate web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: sync only, so the stack above runs in one thread per request (kernel/middleware.py).
    "kernel.middleware.OneThreadMiddleware",
]

ROOT_URLCONF = "memoryhub.urls"
ASGI_APPLICATION = "memoryhub.asgi.application"

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

# --- Database: one SQLite file, configured for a server (see kernel/database.py) -------------
DB_PATH = env_path("MEMORYHUB_DB_PATH", DATA_DIR / "memoryhub.sqlite3")
ensure_dir(DB_PATH.parent)
DURABILITY = env_choice("MEMORYHUB_DURABILITY", "async", ["sync", "async"])
DATABASES = {
    "default": {
        # Django's SQLite backend, setting a new file's page size and auto-vacuum once.
        "ENGINE": "kernel.sqlite",
        "NAME": DB_PATH,
        "OPTIONS": sqlite_options(
            durability=DURABILITY,
            busy_timeout_ms=env_int("MEMORYHUB_SQLITE_BUSY_TIMEOUT_MS", 5000, minimum=0),
            page_size=env_int("MEMORYHUB_SQLITE_PAGE_SIZE", 4096, minimum=512, maximum=65536),
            cache_size_mb=env_int("MEMORYHUB_SQLITE_CACHE_MB", 64, minimum=1),
            mmap_size_mb=env_int("MEMORYHUB_SQLITE_MMAP_MB", 256, minimum=0),
        ),
        # Tests use a real file (not :memory:) so WAL, pragmas and multi-connection behaviour
        # are the ones production runs with.
        "TEST": {"NAME": str(env_path("MEMORYHUB_TEST_DB_PATH", DATA_DIR / "test_memoryhub.sqlite3"))},
    }
}
# MEMORYHUB_DATABASE_URL=postgres://user:password@host:port/name: PostgreSQL as the shared store
# for several machines (docs/operations/postgresql.md); SQLite above stays the default.
DATABASE_URL = env_str("MEMORYHUB_DATABASE_URL")
if DATABASE_URL:
    DATABASES["default"] = postgres_database(
        DATABASE_URL,
        durability=DURABILITY,
        test_name=env_str("MEMORYHUB_TEST_DB_NAME"),
        prepare_threshold=env_int("MEMORYHUB_PG_PREPARE_THRESHOLD", 5, minimum=0),
        pool_size=env_int("MEMORYHUB_PG_POOL_SIZE", 10, minimum=0),
        parallel_workers=env_int("MEMORYHUB_PG_PARALLEL_WORKERS", 0, minimum=0),
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Knowledge-graph limits (DESIGN.md "Limits"); each is enforced with a named error ---------
# search_nodes ranks (bm25) among this many newest matching rows, older matches follow newest
# first: a bounded cost for words found everywhere (see graph/selectors.py _ranked_matches).
MEMORYHUB_SEARCH_RANK_WINDOW = env_int("MEMORYHUB_SEARCH_RANK_WINDOW", 1000, minimum=1)
# How long a server process's thread may hold the GIL while another waits (kernel/startup.py);
# Python's default is 5,000 µs.
MEMORYHUB_GIL_SWITCH_INTERVAL_US = env_int("MEMORYHUB_GIL_SWITCH_INTERVAL_US", 100, minimum=50, maximum=100_000)
MEMORYHUB_LIMITS = {
    "MAX_NAME_BYTES": env_int("MEMORYHUB_MAX_NAME_BYTES", 1024, minimum=1),
    "MAX_OBSERVATION_BYTES": env_int("MEMORYHUB_MAX_OBSERVATION_BYTES", 65536, minimum=1),
    "MAX_ITEMS_PER_REQUEST": env_int("MEMORYHUB_MAX_ITEMS_PER_REQUEST", 1000, minimum=1),
    "MAX_SEARCH_LIMIT": env_int("MEMORYHUB_MAX_SEARCH_LIMIT", 1000, minimum=1),
    "MAX_NEIGHBOR_DEPTH": env_int("MEMORYHUB_MAX_NEIGHBOR_DEPTH", 16, minimum=0),
    "MAX_PATH_DEPTH": env_int("MEMORYHUB_MAX_PATH_DEPTH", 10, minimum=1),
    "MAX_PATHS": env_int("MEMORYHUB_MAX_PATHS", 100, minimum=1),
    "MAX_REQUEST_BYTES": env_int("MEMORYHUB_MAX_REQUEST_BYTES", 16 * 1024 * 1024, minimum=1024),
}
DATA_UPLOAD_MAX_MEMORY_SIZE = MEMORYHUB_LIMITS["MAX_REQUEST_BYTES"]
# The console's import uploads (console/transfer.py, graph/import_jobs.py): the largest file taken
# (DATA_UPLOAD_MAX_MEMORY_SIZE does not count files), and where uploads wait until their import ends.
MEMORYHUB_IMPORT_MAX_BYTES = env_int("MEMORYHUB_IMPORT_MAX_BYTES", 256 * 1024 * 1024, minimum=1024)
MEMORYHUB_IMPORT_DIR = env_path("MEMORYHUB_IMPORT_DIR", DATA_DIR / "imports")

# --- Channels: in-memory by default; MEMORYHUB_REDIS_URL switches to Redis for scale-out ----------
# REDIS_URL (the common name platforms set) is accepted when MEMORYHUB_REDIS_URL is not.
REDIS_URL = env_str("MEMORYHUB_REDIS_URL") or env_str("REDIS_URL")
CHANNEL_LAYERS = {
    "default": (
        # Sessions, streams and notifications then reach clients held by any server process, and
        # stdio / TCP processes on the same database.
        {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # No client-side read timeout: a consumer waits for its messages with a blocking
            # BZPOPMIN that Redis ends after 5 s, and redis-py >= 8 also gives up reading after
            # 5 s by default; whichever comes first, and it is often the client, the idle
            # consumer dies with TimeoutError and its SSE stream goes silent for good
            # (channels_redis issue #422).
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}], "prefix": "memoryhub"},
        }
        if REDIS_URL
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    )
}

# --- HTTPS (make run-tls): PEM files; unset → a self-signed pair under the data directory -------
MEMORYHUB_TLS_CERT = env_str("MEMORYHUB_TLS_CERT")
MEMORYHUB_TLS_KEY = env_str("MEMORYHUB_TLS_KEY")

# --- MCP endpoint ---------------------------------------------------------------------------------
# Browser origins (besides this server's own and loopback ones) allowed to call /mcp, /sse and
# /messages; requests without an Origin header (non-browser clients) are always allowed.
MEMORYHUB_MCP_ALLOWED_ORIGINS = env_list("MEMORYHUB_MCP_ALLOWED_ORIGINS", [])
# Items per page of tools/list and resources/list.
MEMORYHUB_MCP_PAGE_SIZE = env_int("MEMORYHUB_MCP_PAGE_SIZE", 50, minimum=1)
# A session unused this long is ended; its id then gets 404 and the client initializes again.
MEMORYHUB_MCP_SESSION_IDLE_SECONDS = env_int("MEMORYHUB_MCP_SESSION_IDLE_SECONDS", 24 * 3600, minimum=60)
# SSE comment sent on idle streams so proxies keep them open.
MEMORYHUB_MCP_KEEPALIVE_SECONDS = env_int("MEMORYHUB_MCP_KEEPALIVE_SECONDS", 15, minimum=1)

# The marketplace SSE stream (/api/mcp/sse) sends ": heartbeat" this often (the seed's 30 s).
MEMORYHUB_MARKETPLACE_HEARTBEAT_SECONDS = env_int("MEMORYHUB_MARKETPLACE_HEARTBEAT_SECONDS", 30, minimum=1)

# --- Embeddings (vectors/embedders.py) -------------------------------------------------------------
# "builtin": the offline multilingual model in the wheel (512 dims, no network). "minilm":
# all-MiniLM-L6-v2 as int8 ONNX (384 dims, English, offline; needs the [minilm] extra). "openai": any
# server speaking the OpenAI embeddings API (OpenAI, Ollama, vLLM, ...) at MEMORYHUB_EMBEDDINGS_URL
# (e.g. https://api.openai.com/v1 or http://localhost:11434/v1). Vectors of different models are
# never compared, so switching means a reindex.
MEMORYHUB_EMBEDDER = env_choice("MEMORYHUB_EMBEDDER", "builtin", ["builtin", "minilm", "openai"])
# The built-in model, once loaded, is kept in this directory (per user, shared by every data dir)
# for the next process to load in a fraction of the time: each server process, stdio server and
# embedding worker loads it when it starts. About 85 MB per model version.
MEMORYHUB_MODEL_CACHE = env_bool("MEMORYHUB_MODEL_CACHE", True)
MEMORYHUB_MODEL_CACHE_DIR = env_path(
    "MEMORYHUB_MODEL_CACHE_DIR", env_path("XDG_CACHE_HOME", Path.home() / ".cache") / "memoryhub"
)
MEMORYHUB_EMBEDDINGS_URL = env_str("MEMORYHUB_EMBEDDINGS_URL")
MEMORYHUB_EMBEDDINGS_MODEL = env_str("MEMORYHUB_EMBEDDINGS_MODEL")
MEMORYHUB_EMBEDDINGS_API_KEY = env_secret("MEMORYHUB_EMBEDDINGS_API_KEY")
# Per HTTP attempt; connection errors, 429 and 5xx are retried this many extra times.
MEMORYHUB_EMBEDDINGS_TIMEOUT_SECONDS = env_int("MEMORYHUB_EMBEDDINGS_TIMEOUT_SECONDS", 30, minimum=1)
MEMORYHUB_EMBEDDINGS_RETRIES = env_int("MEMORYHUB_EMBEDDINGS_RETRIES", 2, minimum=0, maximum=10)
# Texts per model call (OpenAI accepts at most 2048 inputs per request).
MEMORYHUB_EMBEDDINGS_BATCH_SIZE = env_int("MEMORYHUB_EMBEDDINGS_BATCH_SIZE", 64, minimum=1, maximum=2048)
if MEMORYHUB_EMBEDDER == "openai" and not (MEMORYHUB_EMBEDDINGS_URL and MEMORYHUB_EMBEDDINGS_MODEL):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "MEMORYHUB_EMBEDDER=openai needs MEMORYHUB_EMBEDDINGS_URL and MEMORYHUB_EMBEDDINGS_MODEL"
    )

# --- Vector indexes (vectors/indexes.py) -----------------------------------------------------------
# One in-memory index per (namespace, owner kind, model), built from the stored vectors when first
# used and kept current from the change log. "auto": exact search up to
# MEMORYHUB_VECTOR_EXACT_MAX vectors (perfect recall, a few ms), HNSW above.
MEMORYHUB_VECTOR_INDEX = env_choice("MEMORYHUB_VECTOR_INDEX", "auto", ["auto", "hnsw", "ivf", "exact"])
MEMORYHUB_VECTOR_METRIC = env_choice("MEMORYHUB_VECTOR_METRIC", "cos", ["cos", "ip", "l2"])
MEMORYHUB_VECTOR_EXACT_MAX = env_int("MEMORYHUB_VECTOR_EXACT_MAX", 20_000, minimum=0)
MEMORYHUB_HNSW_M = env_int("MEMORYHUB_HNSW_M", 16, minimum=2, maximum=128)
MEMORYHUB_HNSW_EF_CONSTRUCTION = env_int("MEMORYHUB_HNSW_EF_CONSTRUCTION", 200, minimum=8)
# The default trades recall for query time as measured by `make bench BENCH=vectors` (bench/RESULTS.md).
MEMORYHUB_HNSW_EF_SEARCH = env_int("MEMORYHUB_HNSW_EF_SEARCH", 192, minimum=1)
MEMORYHUB_IVF_NLIST = env_int("MEMORYHUB_IVF_NLIST", 256, minimum=1)
MEMORYHUB_IVF_NPROBE = env_int("MEMORYHUB_IVF_NPROBE", 8, minimum=1)
# Loaded indexes kept per process; the least recently used is dropped beyond this.
MEMORYHUB_VECTOR_MAX_LOADED = env_int("MEMORYHUB_VECTOR_MAX_LOADED", 64, minimum=1)
# Build the stored indexes in a background thread when a server starts (else on first search).
MEMORYHUB_VECTOR_WARMUP = env_bool("MEMORYHUB_VECTOR_WARMUP", True)
# Embed observations and memories the server stores (off: no server-side embedding and no backlog;
# nothing is embedded until `manage.py embed_missing` runs, and semantic search misses the new text).
MEMORYHUB_EMBED_ON_WRITE = env_bool("MEMORYHUB_EMBED_ON_WRITE", True)
# How (docs/operations/write-pipeline.md): "behind" commits the text with a pending marker in the
# write's transaction and embeds it in the background (every server process drains the backlog,
# Celery workers too when a broker is configured; a vector search embeds its namespaces' pending
# texts first). "inline" embeds in the request, before the write's transaction (the write returns
# with its vectors stored). Behind is the default: a write then costs its SQL only (the measurements:
# bench/RESULTS.md, "Write pipeline").
MEMORYHUB_EMBED_MODE = env_choice("MEMORYHUB_EMBED_MODE", "behind", ["behind", "inline"])
# Where a server process embeds its backlog: "process" (a child process, `manage.py drain_embeddings`:
# the model never competes with the requests for the GIL, and uses a second core) or "thread" (no
# extra process: for small machines, or many stdio servers each with its own worker).
MEMORYHUB_EMBED_WORKER = env_choice("MEMORYHUB_EMBED_WORKER", "process", ["process", "thread"])
# Texts a drainer claims, embeds and stores per round: one model call (MEMORYHUB_EMBEDDINGS_BATCH_SIZE), and a
# store transaction short enough that a write arriving meanwhile hardly waits for the write lock.
MEMORYHUB_EMBED_BACKLOG_BATCH = env_int("MEMORYHUB_EMBED_BACKLOG_BATCH", 64, minimum=1, maximum=4096)
# Threads a drainer splits each batch across: numpy releases the GIL in the model's matrix products,
# so a second core embeds half of it (the worker runs at a lower CPU priority than the requests).
MEMORYHUB_EMBED_BACKLOG_THREADS = env_int("MEMORYHUB_EMBED_BACKLOG_THREADS", 2, minimum=1, maximum=16)
# How often a server process looks for texts other processes queued (its own wake it at once).
MEMORYHUB_EMBED_BACKLOG_POLL_MS = env_int("MEMORYHUB_EMBED_BACKLOG_POLL_MS", 1000, minimum=10)
# A claimed batch belongs to its process this long; a process that died holding it is taken over after
# (a live one still embedding past it only costs double work: storing a vector is an upsert).
MEMORYHUB_EMBED_BACKLOG_LEASE_SECONDS = env_int("MEMORYHUB_EMBED_BACKLOG_LEASE_SECONDS", 30, minimum=1)
# After an embedder failure a text waits 2^attempts seconds before the next try, at most this long.
MEMORYHUB_EMBED_RETRY_MAX_SECONDS = env_int("MEMORYHUB_EMBED_RETRY_MAX_SECONDS", 300, minimum=1)
# A vector or hybrid search embeds at most this many of its namespaces' pending texts first, newest
# first (older ones are still found by their words in hybrid search until the drainer gets to them).
MEMORYHUB_EMBED_CATCH_UP_MAX = env_int("MEMORYHUB_EMBED_CATCH_UP_MAX", 1000, minimum=1)

# --- Background maintenance (kernel/maintenance.py declares every job) ------------------------
# CELERY_BROKER_URL set (e.g. redis://127.0.0.1:6379/0): `celery -A memoryhub worker` and
# `celery -A memoryhub beat` run the jobs (make run-workers). Unset (the embedded default): every
# server process runs them on a timer thread, and a lease row in the database lets one process at a
# time run a given job. MEMORYHUB_MAINTENANCE=false turns the timer off (workers are not affected).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or CELERY_BROKER_URL
CELERY_TASK_DEFAULT_QUEUE = env_str("MEMORYHUB_CELERY_QUEUE", "memoryhub")
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# One task at a time per worker process: jobs are long and write to one SQLite file anyway.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
MEMORYHUB_MAINTENANCE = env_bool("MEMORYHUB_MAINTENANCE", True)
# A job's lease: another process may take the job over once a run has held it this long without
# reporting progress (a crashed process). Long jobs renew it as they go.
MEMORYHUB_MAINTENANCE_LEASE_SECONDS = env_int("MEMORYHUB_MAINTENANCE_LEASE_SECONDS", 3600, minimum=10)
# How often each job runs, in seconds (0: never on a schedule; `manage.py maintenance` still runs it).
MEMORYHUB_MAINTENANCE_WAL_CHECKPOINT_SECONDS = env_int("MEMORYHUB_MAINTENANCE_WAL_CHECKPOINT_SECONDS", 60, minimum=0)
MEMORYHUB_MAINTENANCE_WAL_TRUNCATE_SECONDS = env_int("MEMORYHUB_MAINTENANCE_WAL_TRUNCATE_SECONDS", 300, minimum=0)
MEMORYHUB_MAINTENANCE_OPTIMIZE_SECONDS = env_int("MEMORYHUB_MAINTENANCE_OPTIMIZE_SECONDS", 3600, minimum=0)
MEMORYHUB_MAINTENANCE_FTS_OPTIMIZE_SECONDS = env_int("MEMORYHUB_MAINTENANCE_FTS_OPTIMIZE_SECONDS", 86400, minimum=0)
# PostgreSQL only: VACUUM (ANALYZE) of every MemoryHub table (kernel/db_maintenance.py), in place of the WAL jobs.
MEMORYHUB_MAINTENANCE_VACUUM_SECONDS = env_int("MEMORYHUB_MAINTENANCE_VACUUM_SECONDS", 86400, minimum=0)
MEMORYHUB_MAINTENANCE_PURGE_EXPIRED_SECONDS = env_int("MEMORYHUB_MAINTENANCE_PURGE_EXPIRED_SECONDS", 300, minimum=0)
MEMORYHUB_MAINTENANCE_PURGE_HISTORY_SECONDS = env_int("MEMORYHUB_MAINTENANCE_PURGE_HISTORY_SECONDS", 86400, minimum=0)
# How long a deleted (expired, merged-away) memory, observation, entity or relation can be restored;
# after it the purge_history job deletes its versions for good. Live objects keep their history.
MEMORYHUB_HISTORY_RETENTION_DAYS = env_int("MEMORYHUB_HISTORY_RETENTION_DAYS", 30, minimum=0)
MEMORYHUB_MAINTENANCE_IVF_RETRAIN_SECONDS = env_int("MEMORYHUB_MAINTENANCE_IVF_RETRAIN_SECONDS", 600, minimum=0)
MEMORYHUB_MAINTENANCE_HNSW_COMPACT_SECONDS = env_int("MEMORYHUB_MAINTENANCE_HNSW_COMPACT_SECONDS", 600, minimum=0)
MEMORYHUB_MAINTENANCE_REEMBED_SECONDS = env_int("MEMORYHUB_MAINTENANCE_REEMBED_SECONDS", 300, minimum=0)
MEMORYHUB_MAINTENANCE_PRUNE_CHANGES_SECONDS = env_int("MEMORYHUB_MAINTENANCE_PRUNE_CHANGES_SECONDS", 3600, minimum=0)
MEMORYHUB_MAINTENANCE_PURGE_SESSIONS_SECONDS = env_int("MEMORYHUB_MAINTENANCE_PURGE_SESSIONS_SECONDS", 3600, minimum=0)
# Rebuild an IVF index (new k-means lists) once it holds this many percent more vectors than at its
# last rebuild; rebuild an HNSW index once deletes since its last rebuild reach this percent of it.
MEMORYHUB_IVF_RETRAIN_GROWTH_PERCENT = env_int("MEMORYHUB_IVF_RETRAIN_GROWTH_PERCENT", 50, minimum=1)
MEMORYHUB_HNSW_COMPACT_DELETED_PERCENT = env_int("MEMORYHUB_HNSW_COMPACT_DELETED_PERCENT", 20, minimum=1)
# Vector change-log rows older than this are pruned; a process whose index fell behind the pruned
# point rebuilds it from the stored vectors instead of catching up.
MEMORYHUB_VECTOR_CHANGE_RETENTION_SECONDS = env_int("MEMORYHUB_VECTOR_CHANGE_RETENTION_SECONDS", 86400, minimum=0)

# --- LLM providers (agents/providers/): chat for /product/chat/complete, the MCP chat tool and
# marketplace agents (each agent may override them). "extractive" needs nothing: it answers from
# the retrieved memories without generating, and says so. "openai": any server speaking the
# OpenAI chat completions API (OpenAI, DeepSeek, Ollama, vLLM, llama.cpp server) at
# MEMORYHUB_LLM_URL, e.g. https://api.deepseek.com/v1 or http://localhost:11434/v1.
MEMORYHUB_LLM_URL = env_str("MEMORYHUB_LLM_URL")
MEMORYHUB_LLM_PROVIDER = env_choice(
    "MEMORYHUB_LLM_PROVIDER", "openai" if MEMORYHUB_LLM_URL else "extractive", ["extractive", "openai"]
)
MEMORYHUB_LLM_MODEL = env_str("MEMORYHUB_LLM_MODEL")
MEMORYHUB_LLM_API_KEY = env_secret("MEMORYHUB_LLM_API_KEY")
# Per HTTP attempt; connection errors, 429 and 5xx are retried this many extra times.
MEMORYHUB_LLM_TIMEOUT_SECONDS = env_int("MEMORYHUB_LLM_TIMEOUT_SECONDS", 60, minimum=1)
MEMORYHUB_LLM_RETRIES = env_int("MEMORYHUB_LLM_RETRIES", 1, minimum=0, maximum=10)
# Most tokens one chat answer may have (a request's max_tokens may ask for fewer).
MEMORYHUB_LLM_MAX_TOKENS = env_int("MEMORYHUB_LLM_MAX_TOKENS", 1024, minimum=1)
if MEMORYHUB_LLM_PROVIDER == "openai" and not (MEMORYHUB_LLM_URL and MEMORYHUB_LLM_MODEL):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("MEMORYHUB_LLM_PROVIDER=openai needs MEMORYHUB_LLM_URL and MEMORYHUB_LLM_MODEL")

# --- Extraction (memory/extraction.py, docs/operations/extraction.md): with MEMORYHUB_LLM_URL and
# MEMORYHUB_LLM_MODEL set, a write with `infer: true` stores the message, then the model extracts its
# facts behind it (without them `infer` is accepted and nothing calls a model). The timeout is
# MEMORYHUB_LLM_TIMEOUT_SECONDS; a failed job is not retried within the call but later, by the queue.
# Where each server process extracts: "thread" (a thread of the server: the work is waiting on the
# model's HTTP answers) or "off" (only Celery workers and `manage.py drain_extractions` do).
MEMORYHUB_EXTRACTION_WORKER = env_choice("MEMORYHUB_EXTRACTION_WORKER", "thread", ["thread", "off"])
# A folder holding extract.md and decide.md to use instead of memory/prompts/ (either may be absent:
# the shipped one is used for it).
MEMORYHUB_EXTRACTION_PROMPT_DIR = env_str("MEMORYHUB_EXTRACTION_PROMPT_DIR")
# Attempts of one message before its job is kept as failed (the message itself is always kept);
# between attempts 2^attempts seconds pass, at most MEMORYHUB_EXTRACTION_RETRY_MAX_SECONDS.
MEMORYHUB_EXTRACTION_MAX_ATTEMPTS = env_int("MEMORYHUB_EXTRACTION_MAX_ATTEMPTS", 5, minimum=1, maximum=100)
MEMORYHUB_EXTRACTION_RETRY_MAX_SECONDS = env_int("MEMORYHUB_EXTRACTION_RETRY_MAX_SECONDS", 600, minimum=0)
# A claimed job belongs to its process this long (0: two LLM timeouts plus a minute, the longest a job
# takes); a process killed holding it leaves it to others after that.
MEMORYHUB_EXTRACTION_LEASE_SECONDS = env_int("MEMORYHUB_EXTRACTION_LEASE_SECONDS", 0, minimum=0)
# How often a server process looks for jobs other processes queued (its own wake it at once).
MEMORYHUB_EXTRACTION_POLL_MS = env_int("MEMORYHUB_EXTRACTION_POLL_MS", 2000, minimum=10)
# Current memories shown to the model per extracted fact (the nearest of the same namespace and
# actor), and the most facts taken from one message.
MEMORYHUB_EXTRACTION_CANDIDATES = env_int("MEMORYHUB_EXTRACTION_CANDIDATES", 5, minimum=1, maximum=50)
MEMORYHUB_EXTRACTION_MAX_FACTS = env_int("MEMORYHUB_EXTRACTION_MAX_FACTS", 20, minimum=1, maximum=200)
# How the answer's shape is asked for: "json_schema" (OpenAI structured outputs; vLLM, Ollama and
# llama.cpp accept it too), "json_object" (JSON mode, for servers without schemas) or "none".
MEMORYHUB_EXTRACTION_RESPONSE_FORMAT = env_choice(
    "MEMORYHUB_EXTRACTION_RESPONSE_FORMAT", "json_schema", ["json_schema", "json_object", "none"]
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = ensure_dir(DATA_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Without collectstatic, WhiteNoise serves straight from the app and project static folders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Browser sign-in (self-service pages and the admin) -----------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "keys"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("MEMORYHUB_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- OAuth 2.1: MemoryHub as its own authorization server for remote MCP clients ------------
# (docs/remote-mcp.md; the MCP authorization spec, revisions 2025-06-18 and 2025-11-25). Clients
# register themselves (RFC 7591) or name a client metadata document (an https URL as client_id),
# send the user here to sign in and consent (authorization code with PKCE S256 only), and get
# short-lived access tokens bound to this server's MCP resource (RFC 8707) with rotating refresh
# tokens. A token reaches the namespaces its user chose at consent (access/oauth.py).
MEMORYHUB_OAUTH_ACCESS_TOKEN_SECONDS = env_int("MEMORYHUB_OAUTH_ACCESS_TOKEN_SECONDS", 3600, minimum=60)
MEMORYHUB_OAUTH_REFRESH_TOKEN_SECONDS = env_int("MEMORYHUB_OAUTH_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600, minimum=3600)
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER = {
    # One scope: the namespaces a token reaches are chosen on the consent page, not by scope names.
    "SCOPES": {"mcp": "Use MemoryHub's memory in the namespaces you choose"},
    "DEFAULT_SCOPES": ["mcp"],
    "PKCE_REQUIRED": True,
    # RFC 9700: no plain PKCE, no implicit or password grant, hashed secrets.
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": MEMORYHUB_OAUTH_ACCESS_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": MEMORYHUB_OAUTH_REFRESH_TOKEN_SECONDS,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    # A refresh token used twice revokes its whole family (a stolen token is caught when replayed).
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REQUEST_APPROVAL_PROMPT": "force",
    # Redirect URIs: https, or a loopback address on any port for native clients (RFC 8252).
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
    "ALLOW_LOCALHOST_LOOPBACK": True,
    "DCR_ENABLED": True,
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    "CIMD_ENABLED": True,
    # Same limits as DOT's defaults (https only, public addresses, 16 KiB, 5 s), plus our
    # redirect-URI rule and the two escape hatches below (access/oauth_server.py).
    "CIMD_METADATA_FETCHER": "access.oauth_server.MetadataFetcher",
    "OAUTH2_PROTECTED_RESOURCE_NAME": "MemoryHub",
    # MemoryHub's rules: every code and token bound to this server's /mcp, redirect URIs https or
    # loopback, an exchanged code replayed revokes its tokens (access/oauth_server.py).
    "OAUTH2_VALIDATOR_CLASS": "access.oauth_server.MemoryHubOAuth2Validator",
    "OAUTH2_BACKEND_CLASS": "access.oauth_server.OAuthBackend",
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    # What the metadata (RFC 8414) advertises is what registration allows: public clients (PKCE,
    # no secret) with the authorization-code grant and rotating refresh tokens.
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["none"],
}
# For tests and private deployments only: hosts whose client metadata documents are fetched even
# though they resolve to a private or loopback address, and a CA bundle trusted when fetching them
# (empty: none, and the system's CAs).
MEMORYHUB_OAUTH_CIMD_ALLOW_HOSTS = env_list("MEMORYHUB_OAUTH_CIMD_ALLOW_HOSTS", [])
MEMORYHUB_OAUTH_CIMD_CA_FILE = env_str("MEMORYHUB_OAUTH_CIMD_CA_FILE", "")
# --- Cache: rate-limit buckets and last-use markers. Redis when configured, so the limits hold
# across server processes; otherwise per-process memory. ---------------------------------------
CACHES = {
    "default": (
        # One Redis client per process (kernel/cache.py): Django would open a connection per request.
        {"BACKEND": "kernel.cache.SharedRedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "memoryhub"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "memoryhub"}
    )
}

# --- API keys ----------------------------------------------------------------------------------
MEMORYHUB_RATE_LIMIT = {
    # Requests per minute per key (0 turns the limit off) and how many may arrive at once.
    "PER_MINUTE": env_int("MEMORYHUB_RATE_LIMIT_PER_MINUTE", 1200, minimum=0),
    "BURST": env_int("MEMORYHUB_RATE_LIMIT_BURST", 100, minimum=1),
}

# --- Sign-in throttling (/accounts/login/ and /admin/login/; access/signin.py) ----------
# Failed sign-ins are counted in the cache per account (the username typed, existing or not) and
# per client address, in a window that starts with the first failure; at the limit, sign-in is
# refused (429, even with the right password) until the window ends.
MEMORYHUB_SIGNIN_THROTTLE = {
    "FAILURES_PER_ACCOUNT": env_int("MEMORYHUB_SIGNIN_FAILURES_PER_ACCOUNT", 5, minimum=1),
    "FAILURES_PER_ADDRESS": env_int("MEMORYHUB_SIGNIN_FAILURES_PER_ADDRESS", 20, minimum=1),
    "WINDOW_SECONDS": env_int("MEMORYHUB_SIGNIN_WINDOW_SECONDS", 900, minimum=1),
}

# --- REST API (DRF) and its OpenAPI schema ------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["access.drf.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["access.drf.HasApiKey"],
    "DEFAULT_RENDERER_CLASSES": ["kernel.rest_json.SafeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["kernel.rest_json.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "kernel.http_errors.drf_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Keep non-ASCII text readable on the wire (names and observations are often not English).
    "UNICODE_JSON": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MemoryHub API",
    "DESCRIPTION": "Long-term memory for LLM agents: the knowledge graph over REST, and memory banks. "
    "Every endpoint takes an API key (X-API-Key or Authorization: Bearer) whose grants cover the namespace.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"Direction": ["out", "in", "both"]},
}

LOG_LEVEL = env_choice("MEMORYHUB_LOG_LEVEL", "info", ["debug", "info", "warning", "error"]).upper()
# "json": one JSON object per line with the request id (kernel/logs.py); "plain" for a terminal.
LOG_FORMAT = env_choice("MEMORYHUB_LOG_FORMAT", "plain", ["plain", "json"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "kernel.logs.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        "json": {"()": "kernel.logs.JsonFormatter"},
    },
    "filters": {"request_id": {"()": "kernel.logs.RequestIdFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Observability (kernel/metrics.py, kernel/observability.py, /metrics, /healthz) ---------
# /metrics is open to loopback callers and to operator keys; true: to anyone. Who is a loopback
# caller rests on MEMORYHUB_TRUSTED_PROXIES (the transport security block below).
MEMORYHUB_METRICS_PUBLIC = env_bool("MEMORYHUB_METRICS_PUBLIC", False)

# --- Transport security (kernel/security.py; the MCP routes: mcp_endpoint/http.py) -------------
# Strict-Transport-Security max-age, sent over TLS only (0: never). Cookies are Secure over TLS
# whatever MEMORYHUB_SECURE_COOKIES says.
SECURE_HSTS_SECONDS = env_int("MEMORYHUB_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
# Every HTML page: nothing from other origins, no inline script (Swagger UI, Redoc and the admin are
# served from /static/; Swagger UI sets inline styles, draws data: images, Redoc starts a blob: worker).
MEMORYHUB_CONTENT_SECURITY_POLICY = env_str(
    "MEMORYHUB_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
# Addresses or networks of the reverse proxies in front (default: one on this host, any loopback
# address: under `daphne --proxy-headers` the peer address is the chain's first entry, which the
# caller wrote). A request from one of them is judged by the client its X-Forwarded-For / Forwarded
# / X-Real-IP names; any other peer by its own address, whatever headers it sends. (/metrics'
# loopback rule.)
MEMORYHUB_TRUSTED_PROXIES = env_list("MEMORYHUB_TRUSTED_PROXIES", ["127.0.0.0/8", "::1"])
try:
    for _network in MEMORYHUB_TRUSTED_PROXIES:
        ipaddress.ip_network(_network, strict=False)
except ValueError as _problem:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"MEMORYHUB_TRUSTED_PROXIES: {_problem}") from None
