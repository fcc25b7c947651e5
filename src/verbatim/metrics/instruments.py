"""The process's instruments (prometheus-client's default registry) and the calls that feed them.

Each process counts what it does itself: an API process its HTTP requests and ingests, a worker
its jobs. Every process serves its own figures (per-process endpoints; Prometheus adds them up
across processes with `sum`), see docs/operations.md. Cluster-wide figures that no one process
sees (queue depth, live workers) are read from the database (metrics/cluster.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Seconds; HTTP answers from a few ms (reads) to minutes (an OpenAI-API request waiting).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
JOB_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5)

http_requests = Counter(
    "verbatim_http_requests",
    "HTTP requests answered, by route template",
    ["method", "route", "status"],
)
http_duration = Histogram(
    "verbatim_http_request_duration_seconds",
    "Time from request to the end of the answer, by route template",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
)
job_duration = Histogram(
    "verbatim_job_duration_seconds",
    "Time one attempt of a job ran, by job type and outcome (completed, failed, retried, "
    "cancelled)",
    ["type", "outcome"],
    buckets=JOB_BUCKETS,
)
job_failures = Counter(
    "verbatim_job_failures", "Jobs that failed for good, by type and error code", ["type", "code"]
)
download_failures = Counter(
    "verbatim_download_failures", "URL downloads that failed for good, by error code", ["code"]
)
real_time_factor = Histogram(
    "verbatim_transcription_real_time_factor",
    "Processing time over audio duration of completed transcriptions (below 1: faster than "
    "real time), by model",
    ["model"],
    buckets=RTF_BUCKETS,
)
audio_seconds = Counter(
    "verbatim_transcribed_audio_seconds", "Seconds of audio transcribed, by model", ["model"]
)
bytes_ingested = Counter(
    "verbatim_ingested_bytes",
    "Bytes of media received into the library, by source (upload, download, presigned) and "
    "whether they were already there (duplicate)",
    ["source", "duplicate"],
)
webhook_deliveries = Counter(
    "verbatim_webhook_deliveries",
    "Webhook delivery attempts by outcome (delivered, failed, retrying, disabled, ...)",
    ["outcome"],
)


def record_job(job_type: str, outcome: str, seconds: float) -> None:
    job_duration.labels(job_type, outcome).observe(max(seconds, 0.0))


def record_job_failure(job_type: str, code: str) -> None:
    job_failures.labels(job_type, code).inc()
    if job_type == "download":
        download_failures.labels(code).inc()


def record_transcription(model: str, duration_s: float, processing_s: float) -> None:
    if duration_s > 0:
        real_time_factor.labels(model).observe(processing_s / duration_s)
        audio_seconds.labels(model).inc(duration_s)


def record_ingest(source: str, size: int, duplicate: bool) -> None:
    bytes_ingested.labels(source, "true" if duplicate else "false").inc(max(size, 0))


def record_webhook_delivery(outcome: str) -> None:
    """The hook for webhook deliveries (issue 12's webhooks): call once per attempt."""
    webhook_deliveries.labels(outcome).inc()
