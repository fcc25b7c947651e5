"""One Settings class for the whole service; every value comes from VERBATIM_* variables or .env."""

from __future__ import annotations

import os
import secrets
import time
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DEV_ENVS = {"development", "test"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERBATIM_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("./verbatim-data")
    # Unset: start (or reuse) the embedded PostgreSQL server under data_dir/postgres.
    database_url: str | None = None
    database_pool_size: int = 10
    # Longest wait for a free pooled connection; then the request gets 503 `database_busy`.
    database_pool_timeout_s: float = Field(default=10.0, gt=0)

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True

    # Secrets: generated and kept in data_dir in development; must be set in production.
    secret_key: str | None = None
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    # Who may create accounts: `open` (anyone, POST /auth/register) or `closed` (an admin through
    # POST /admin/users, or `verbatim user create`). Unset: open in development and test (a laptop
    # works with zero configuration), closed in production (a public server is not a free
    # transcription service for the internet). See docs/decisions/0006-auth-hardening.md.
    registration: Literal["open", "closed"] | None = None
    allow_registration: bool | None = None  # deprecated: VERBATIM_ALLOW_REGISTRATION=false closes
    # Login and registration limits, counted in the database (fixed windows) across API processes.
    login_rate_window_s: int = Field(default=900, ge=1)
    login_rate_per_account: int = Field(default=10, ge=1, description="failed logins per window")
    login_rate_per_address: int = Field(default=30, ge=1, description="logins per window")
    register_rate_window_s: int = Field(default=3600, ge=1)
    register_rate_per_address: int = Field(default=10, ge=1)

    # Teams (decision 0019): invitations, optional mail, the audit log's retention.
    invitation_ttl_hours: int = Field(default=168, ge=1, le=24 * 90)
    # Unset: invitations are not mailed; the inviter gets the token and link to pass on.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "verbatim@localhost"
    smtp_starttls: bool = True
    audit_retention_days: int | None = Field(default=None, ge=1)  # unset: keep forever
    # Quotas per tenant (a tenant's own value overrides; 0 = unlimited).
    quota_storage_bytes: int = Field(default=0, ge=0)
    quota_concurrent_jobs: int = Field(default=0, ge=0)
    quota_uploads_per_hour: int = Field(default=0, ge=0)
    quota_audio_minutes_per_month: int = Field(default=0, ge=0)

    _secret_cache: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _registration_default(self) -> Settings:
        if self.registration is None:
            if self.allow_registration is not None:
                self.registration = "open" if self.allow_registration else "closed"
            else:
                self.registration = "open" if self.env in _DEV_ENVS else "closed"
        return self

    @property
    def registration_open(self) -> bool:
        return self.registration == "open"

    max_upload_bytes: int = 500 * 1024 * 1024
    # A request body that sends no byte for this long is answered 408 `request_timeout`.
    body_idle_timeout_s: float = Field(default=30.0, gt=0)
    # Request line and headers together (`verbatim serve`): larger ones get 431.
    max_header_bytes: int = Field(default=64 * 1024, ge=8 * 1024)
    # Media probing (PyAV) runs in this many child processes; a probe past the timeout is killed.
    probe_workers: int = Field(default=2, ge=1, le=32)
    probe_timeout_s: float = Field(default=300, gt=0)

    # Media storage: the local filesystem (data_dir/media) or any S3-compatible object store.
    storage: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None  # unset: AWS S3 itself
    s3_region: str = "us-east-1"
    s3_bucket: str | None = None
    s3_access_key_id: str | None = None  # unset: boto3's usual chain (env, profile, IAM role)
    s3_secret_access_key: str | None = None
    s3_addressing_style: Literal["auto", "virtual", "path"] = "auto"
    s3_max_attempts: int = Field(default=5, ge=1, description="tries per S3 call, with backoff")
    # Base URL clients reach the API at (local presigned URLs); unset: taken from the request.
    public_url: str | None = None
    # Direct uploads (presigned PUT URLs); S3 parts are 5 MiB at least.
    direct_upload_max_bytes: int = Field(default=5 * 1024**3, ge=1)
    multipart_threshold_bytes: int = Field(default=64 * 1024**2, ge=5 * 1024**2)
    multipart_part_size_bytes: int = Field(default=16 * 1024**2, ge=5 * 1024**2)
    # The web UI sends files of at least this size by direct upload (presigned, multipart past
    # multipart_threshold_bytes, resumable) instead of through the API process; 0: never.
    web_direct_upload_bytes: int = Field(default=32 * 1024**2, ge=0)
    upload_expires_s: int = Field(default=6 * 3600, ge=60, le=7 * 24 * 3600)
    # Presigned GET URLs (media redirects, exports) live this long.
    # Long transcripts' exports, laid out once and reused while their inputs are unchanged
    # (per process, least recently used first out; 0 keeps none: transcriptions.export_cache).
    export_cache_mb: int = Field(default=64, ge=0, le=65536)
    presigned_get_expires_s: int = Field(default=900, ge=10, le=7 * 24 * 3600)
    # Housekeeping (storage.cleanup, storage.retention).
    tmp_max_age_hours: float = Field(default=6.0, gt=0)
    media_retention_days: int | None = Field(default=None, ge=1)  # unset: keep media forever
    store_transcoded: Literal["opus"] | None = None  # store lossless uploads as Opus

    @field_validator("store_transcoded", "media_retention_days", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("", "off") else value

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> Settings:
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("VERBATIM_S3_BUCKET is required with VERBATIM_STORAGE=s3")
        return self

    default_model: str = "tiny.en"
    # Extra directory searched for models by name (a folder with model.bin per model); unset:
    # data_dir/models/whisper, where `verbatim models install` puts them (zero configuration).
    models_dir: Path | None = None
    engine_device: str = "cpu"
    engine_compute_type: str = "int8"
    engine_cpu_threads: int = 0
    # 0: the sequential path; N: faster-whisper's BatchedInferencePipeline (VAD chunks, N at
    # once). Decision 0016 and bench/engines.py say which is the default and why.
    engine_batch_size: int = Field(default=0, ge=0, le=64)
    # Estimated price per minute of audio (USD), per engine or per "engine/model" (the more
    # specific wins), merged over DEFAULT_ENGINE_PRICES; a JSON object in the environment.
    engine_prices: dict[str, float] = Field(default_factory=dict)
    # Cloud engines: every HTTP call's timeout, and how 429/5xx/network errors are retried
    # (exponential backoff from engine_retry_base_s, capped; a Retry-After header wins).
    engine_http_timeout_s: float = Field(default=60.0, gt=0)
    engine_upload_timeout_s: float = Field(default=600.0, gt=0)
    engine_max_retries: int = Field(default=5, ge=0, le=20)
    engine_retry_base_s: float = Field(default=1.0, gt=0)
    engine_retry_max_s: float = Field(default=60.0, gt=0)
    # Asynchronous providers: time between status polls, and the longest wait for a result.
    engine_poll_interval_s: float = Field(default=3.0, gt=0)
    engine_max_wait_s: float = Field(default=6 * 3600.0, gt=0)
    # Any OpenAI-compatible /v1/audio/transcriptions server (OpenAI, Groq, speaches, vLLM...).
    # Available when a key is set, or the base URL is not OpenAI's (keyless local servers).
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str | None = None
    openai_model: str = "whisper-1"
    # Models offered in GET /api/v1/engines (a request may name any; the server decides).
    openai_models: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["whisper-1"])
    # Files larger than this are split on silence and sent in parts (25 MB at OpenAI).
    openai_max_upload_bytes: int = Field(default=25 * 1000 * 1000, ge=64 * 1024)
    # AssemblyAI (REST API v2); available when the key is set.
    assemblyai_api_key: str | None = None
    assemblyai_base_url: str = "https://api.assemblyai.com"
    assemblyai_speech_model: str = "universal"
    assemblyai_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["universal", "slam-1"]
    )
    # Google Cloud Speech-to-Text v1 (REST, API key); available when the key is set.
    google_api_key: str | None = None
    google_base_url: str = "https://speech.googleapis.com"
    google_model: str = "latest_long"
    google_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["latest_long", "default", "phone_call", "video"]
    )
    # v1 needs a language: used when a request names none.
    google_language_code: str = "en-US"
    # Inline audio is limited to 10 MB per request (base64 adds a third): larger parts split.
    google_max_inline_bytes: int = Field(default=7_500_000, ge=64 * 1024, le=7_500_000)
    # Yandex SpeechKit asynchronous recognition (REST API v3); available when the key is set.
    yandex_api_key: str | None = None
    yandex_base_url: str = "https://stt.api.cloud.yandex.net"
    yandex_operation_url: str = "https://operation.api.cloud.yandex.net"
    yandex_model: str = "general"
    yandex_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["general", "general:rc"]
    )
    # WAV bytes sent inline per operation; longer audio is cut on silence into several.
    yandex_max_inline_bytes: int = Field(default=10_000_000, ge=64 * 1024)
    # Dialogue mode: a speaker whose voice is at least this similar (cosine of CAM++ centroids)
    # to one of the owner's voice profiles is labelled with the profile's name.
    voice_match_threshold: float = Field(default=0.63, ge=0.0, le=1.0)

    # OpenAI-compatible API (/v1/audio/...): how long a request waits for its transcription
    # job; past it the answer is 504 `job_timeout` naming the job to poll (decision 0017).
    openai_wait_timeout_s: float = Field(default=300.0, gt=0)

    # Prometheus metrics (decision 0017): GET /metrics on the API port needs this bearer token
    # (unset: that route answers 404). VERBATIM_METRICS_PORT serves them on a separate listener
    # without a token, bound to VERBATIM_METRICS_HOST; every process (API, worker) serves its
    # own figures there.
    metrics_token: str | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    # Worker: run it inside `verbatim serve` (embedded mode) or only in `verbatim worker`.
    # API processes `verbatim serve` starts on its port (one per core is the usual choice);
    # above 1 the job worker runs in a process of its own (serve_processes, decision 0029).
    api_workers: int = Field(default=1, ge=1, le=64)
    run_worker_in_api: bool = True
    worker_transcriptions: int = Field(default=1, ge=1, description="transcriptions run at once")
    worker_concurrency: int = Field(default=4, ge=1, description="other jobs run at once")
    # Cloud engine transcriptions one worker runs at once (each mostly waits on the provider).
    worker_cloud_transcriptions: int = Field(default=8, ge=1)
    max_running_per_user: int = Field(default=3, ge=1)
    worker_heartbeat_s: float = 10.0
    stalled_after_s: float = 60.0
    # Attempts a job gets (first run included) before a transient failure becomes final.
    job_max_attempts: int = Field(default=4, ge=1)
    # Delay before attempt n+1: up to base * 2^(n-1) seconds (full jitter), at most job_retry_max_s.
    job_retry_base_s: float = Field(default=2.0, gt=0)
    job_retry_max_s: float = Field(default=300.0, gt=0)
    # How often an idle worker looks for jobs whose scheduled time has come (new jobs wake it).
    worker_poll_s: float = Field(default=5.0, gt=0)
    auto_migrate: bool = True
    # Search (GET /api/v1/search; see docs/decisions/0012-hybrid-search.md).
    # Candidates each retriever hands to the fusion (at least; deeper pages ask for more).
    search_candidates: int = Field(default=100, ge=10, le=1000)
    # pgvector HNSW: candidate list per scan (hnsw.ef_search), iterative scan mode and how many
    # index tuples an iterative scan may visit before it gives up (hnsw.max_scan_tuples).
    search_ef_search: int = Field(default=400, ge=10, le=1000)
    search_iterative_scan: Literal["relaxed_order", "strict_order", "off"] = "relaxed_order"
    search_max_scan_tuples: int = Field(default=20000, ge=1000)
    # A search whose filtered scope holds at most this many chunks is answered exactly (no
    # HNSW): cheaper than walking the graph for a few matches, and recall is 1.
    search_exact_max_chunks: int = Field(default=10000, ge=0)
    # The word leg ranks at most this many matching chunks (0: all). Ranking reads each match's
    # tsvector; a query of common words can match a tenth of a large library.
    search_text_max_matches: int = Field(default=2000, ge=0)
    # Reciprocal rank fusion constant: score = sum of 1 / (k + rank).
    search_rrf_k: int = Field(default=60, ge=1)
    # Topics: a transcription is suggested for a topic when its best passage reaches this
    # cosine similarity to the topic's name and description (same embedding model as search).
    topic_threshold: float = Field(default=0.35, ge=0.0, le=1.0)
    # /health/ready runs its checks (one of them writes to storage) at most this often.
    health_cache_s: float = Field(default=5.0, ge=0)
    # Live job events (GET /api/v1/jobs/{id}/events, /api/v1/events): a comment line this often
    # keeps proxies from closing an idle stream and notices a client that went away.
    events_heartbeat_s: float = Field(default=15.0, gt=0)

    # Webhooks (webhooks/; docs/decisions/0018-webhooks-and-live-events.md). Attempts per
    # message (first included), delay before attempt n+1 about base * 2^(n-1) s with jitter,
    # capped: the defaults retry for about a day before the message counts as failed.
    webhook_max_attempts: int = Field(default=16, ge=1, le=100)
    webhook_retry_base_s: float = Field(default=60.0, gt=0)
    webhook_retry_max_s: float = Field(default=4 * 3600.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="per attempt, wall time")
    # Endpoints per user, and the shortest interval between two job.progress messages of a job.
    webhook_max_endpoints: int = Field(default=20, ge=1)
    webhook_progress_interval_s: float = Field(default=10.0, ge=0)
    # An endpoint is disabled once this many messages in a row failed for good (every attempt).
    webhook_disable_after_failures: int = Field(default=1, ge=1)
    # Private networks webhooks may reach (comma-separated CIDRs, like downloads'); metadata
    # addresses are refused whatever this says.
    webhook_allow_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )

    # Search (search/): the text embedding model, loaded on first use in each process.
    # Unset: the bundled int8 all-MiniLM-L6-v2. A path: a folder with model.onnx and tokenizer
    # files, pooled like the fastembed model named by embedding_model_kind; 384-d vectors.
    embedding_model: Path | None = None
    embedding_model_kind: str = "sentence-transformers/all-MiniLM-L6-v2"
    embedding_threads: int = Field(default=0, ge=0, description="onnxruntime threads; 0: all")
    embedding_batch_size: int = Field(default=32, ge=1, le=1024)
    # Query embeddings run at once in the API process (a small thread pool).
    embedding_query_concurrency: int = Field(default=2, ge=1, le=32)

    # Reconciliation's optional LLM pass (reconciliation/llm.py): any OpenAI-compatible chat
    # endpoint. Off unless base URL and model are both set; the key may be empty (Ollama).
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str | None = None
    llm_timeout_s: float = Field(default=120.0, gt=0)

    @field_validator("embedding_model", mode="before")
    @classmethod
    def _blank_model_is_default(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    # Media from URLs (yt-dlp in a child process; see downloads/).
    download_max_bytes: int = Field(default=2 * 1024**3, ge=1)
    download_max_duration_s: float = Field(default=4 * 3600, gt=0)
    download_timeout_s: float = Field(default=600, gt=0, description="wall time per download")
    download_rate_per_hour: int = Field(default=10, ge=1, description="download jobs per user")
    # Networks a download may reach although they are private (tests, trusted deployments).
    # Comma-separated CIDRs in the environment; empty: every non-public address is refused.
    download_allow_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )

    @field_validator("download_allow_networks", "webhook_allow_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            return [ip_network(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator(
        "openai_models", "assemblyai_models", "google_models", "yandex_models", mode="before"
    )
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):  # comma-separated in the environment
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _default_models_dir(self) -> Settings:
        if self.models_dir is None:
            self.models_dir = self.data_dir / "models" / "whisper"
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env not in _DEV_ENVS and (not self.secret_key or len(self.secret_key) < 32):
            raise ValueError("VERBATIM_SECRET_KEY of 32+ characters is required in production")
        return self

    @property
    def is_embedded_db(self) -> bool:
        return self.database_url is None

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    def resolved_secret_key(self) -> str:
        """The configured secret, or one generated once and kept in the data directory.

        The file is read once per Settings object (every token check needs the secret).
        """
        if self.secret_key:
            return self.secret_key
        if self._secret_cache is not None:
            return self._secret_cache
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            _create_secret_file(path, secrets.token_urlsafe(48))
        self._secret_cache = _read_secret_file(path)
        return self._secret_cache


def _create_secret_file(path: Path, value: str) -> None:
    """Create the file with mode 0600 from the start (no window where another account can read
    it), and never overwrite one: a concurrent start that lost the race keeps the winner's."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(value)


def _read_secret_file(path: Path) -> str:
    # A concurrent start may have created the file and not yet written it.
    for _ in range(50):
        value = path.read_text().strip()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"secret file {path} is empty")


@lru_cache
def get_settings() -> Settings:
    return Settings()
