"""Storage benchmark: a large upload to S3-compatible storage, direct (presigned multipart) and
through the API, with the API process's memory growth for each.

A WAV of --size-mb MiB (the same seeded noise as the ingest benchmark) is generated once. A
local S3 server (moto's, `python -m moto.server`, in a subprocess on loopback) holds a fresh
bucket, and a real `verbatim serve` subprocess uses it (VERBATIM_STORAGE=s3). Then, as a new
user each time:

- presigned: POST /api/v1/uploads, PUT every part to its presigned URL (4 at a time, each read
  from disk by the client), POST .../complete (the server completes the multipart upload, checks
  the size, streams the object down to hash and probe it, and copies it to its final key);
  timed from the first request to the 201, with the parts and the complete step apart;
- api: POST /api/v1/audio multipart, the way bench.ingest measures it (streamed to a temporary
  file while hashing, probed, then put to S3 in parts); timed until the 201.

Both answers' SHA-256 must equal the file's. RSS growth is the API process's peak during the
upload minus its RSS just before (sampled every 50 ms). moto is a test server written in Python
that keeps objects in its own memory: the figures measure the service against it, not what AWS
or MinIO would allow; the memory figure is the point (the service must stream, not buffer).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx

from bench.common import (
    MIB,
    ApiClient,
    BenchError,
    ServerProcess,
    child_env,
    expect,
    free_port,
    median,
    start_process,
    stop_process,
    verbatim_server,
    wait_until_ok,
)
from bench.ingest import MB, RssSampler, check_digest, make_noise_wav, upload_to_service

BUCKET = "verbatim-bench"
PARALLEL_PARTS = 4


@contextlib.contextmanager
def s3_server(work_dir: Path) -> Iterator[ServerProcess]:
    """moto's S3 server in a subprocess on a free loopback port, with BUCKET; always stopped."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start_process(
        "moto S3 server",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=child_env(),
        cwd=work_dir,
        log_path=work_dir / "moto.log",
        port=port,
    )
    try:
        server.ready_s = wait_until_ok(server, "/", 60.0)
        boto3.client(
            "s3",
            endpoint_url=server.base_url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        ).create_bucket(Bucket=BUCKET)
        yield server
    finally:
        stop_process(server)


def s3_env(s3: ServerProcess, size: int) -> dict[str, str]:
    return {
        "VERBATIM_STORAGE": "s3",
        "VERBATIM_S3_ENDPOINT_URL": s3.base_url,
        "VERBATIM_S3_BUCKET": BUCKET,
        "VERBATIM_S3_REGION": "us-east-1",
        "VERBATIM_S3_ACCESS_KEY_ID": "bench",
        "VERBATIM_S3_SECRET_ACCESS_KEY": "bench",
        "VERBATIM_S3_ADDRESSING_STYLE": "path",
        "VERBATIM_MAX_UPLOAD_BYTES": str(size + 64 * MIB),
        "VERBATIM_DIRECT_UPLOAD_MAX_BYTES": str(size + 64 * MIB),
        # Multipart from 16 MiB on (parts keep the default 16 MiB), so a quick run has parts too.
        "VERBATIM_MULTIPART_THRESHOLD_BYTES": str(16 * MIB),
    }


def _put_part(http: httpx.Client, source: Path, part: dict[str, Any], part_size: int) -> None:
    with source.open("rb") as handle:
        handle.seek((part["part_number"] - 1) * part_size)
        data = handle.read(part["size"])
    response = http.put(part["url"], content=data)
    if response.status_code != 200:
        raise BenchError(f"part {part['part_number']}: {response.status_code} {response.text}")


def presigned_upload(server: ServerProcess, source: Path, sha256: str) -> dict[str, Any]:
    """Create, PUT the parts straight to storage, complete; checked, then deleted."""
    size = source.stat().st_size
    with ApiClient(server.base_url) as client, httpx.Client(timeout=900.0) as storage_http:
        os.sync()
        with RssSampler(server.pid) as rss:
            started = time.perf_counter()
            upload = client.post_json(
                "/api/v1/uploads",
                {"filename": source.name, "size": size, "content_type": "audio/wav"},
                201,
            )
            multipart = upload["multipart"]
            if multipart is None:
                raise BenchError("the upload was not multipart; use a larger --size-mb")
            with ThreadPoolExecutor(PARALLEL_PARTS) as pool:
                list(
                    pool.map(
                        lambda p: _put_part(storage_http, source, p, multipart["part_size"]),
                        multipart["parts"],
                    )
                )
            parts_done = time.perf_counter()
            audio = expect(client.http.post(upload["complete_url"]), 201)
            finished = time.perf_counter()
        check_digest("the presigned upload", audio["sha256"], audio["size_bytes"], sha256, size)
        client.http.delete(f"/api/v1/audio/{audio['id']}")  # frees the bucket; not timed
    seconds = finished - started
    return {
        "seconds": seconds,
        "parts_seconds": parts_done - started,
        "complete_seconds": finished - parts_done,
        "parts": multipart["part_count"],
        "part_size": multipart["part_size"],
        "mb_per_s": size / MB / seconds,
        "rss_growth_mb": rss.growth / MB,
        "sha256_ok": True,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    size = args.size_mb * MIB
    work = Path(tempfile.mkdtemp(prefix="verbatim-bench-storage-", dir=args.tmp_dir))
    try:
        source = work / "source" / f"noise-{args.size_mb}MiB.wav"
        print(f"generating a {args.size_mb} MiB WAV in {work} ...", flush=True)
        sha256 = make_noise_wav(source, size)
        presigned: list[dict[str, Any]] = []
        api: list[dict[str, Any]] = []
        with (
            s3_server(work / "s3") as s3,
            verbatim_server(work / "service", env=s3_env(s3, size)) as service,
        ):
            for index in range(args.repeat):
                label = f"[{index + 1}/{args.repeat}]"
                presigned.append(presigned_upload(service, source, sha256))
                print(f"{label} presigned {presigned[-1]['mb_per_s']:8.1f} MB/s", flush=True)
                api.append(upload_to_service(service, source, sha256))
                print(f"{label} api       {api[-1]['mb_per_s']:8.1f} MB/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        "file_bytes": size,
        "file_sha256": sha256,
        "storage": "s3 (moto server on loopback, a subprocess)",
        "runs": len(api),
        "presigned_mb_per_s": median(r["mb_per_s"] for r in presigned),
        "api_mb_per_s": median(r["mb_per_s"] for r in api),
        "presigned_rss_growth_mb": max(r["rss_growth_mb"] for r in presigned),
        "api_rss_growth_mb": max(r["rss_growth_mb"] for r in api),
        "sha256_verified": True,
        "presigned_runs": presigned,
        "api_runs": api,
    }
    print_report(summary)
    return summary


def print_report(s: dict[str, Any]) -> None:
    runs = f"median of {s['runs']} runs" if s["runs"] > 1 else "1 run"
    first = s["presigned_runs"][0]
    parts = median(r["parts_seconds"] for r in s["presigned_runs"])
    complete = median(r["complete_seconds"] for r in s["presigned_runs"])
    api_s = median(r["seconds"] for r in s["api_runs"])
    print()
    print(
        f"== storage: {s['file_bytes'] / MIB:.0f} MiB WAV to S3 (moto on loopback), {runs}; "
        "MB = 10^6 bytes =="
    )
    print(
        f"  presigned multipart: {first['parts']} parts of {first['part_size'] / MIB:.0f} MiB, "
        f"{PARALLEL_PARTS} at a time   {parts + complete:7.2f} s  "
        f"{s['presigned_mb_per_s']:8.1f} MB/s"
    )
    print(f"    parts PUT to storage                      {parts:7.2f} s")
    print(f"    complete (size, hash, probe, copy)        {complete:7.2f} s")
    print(
        f"  through the API, POST /api/v1/audio         {api_s:7.2f} s  "
        f"{s['api_mb_per_s']:8.1f} MB/s"
    )
    print(
        f"  API process peak RSS growth: presigned {s['presigned_rss_growth_mb']:.1f} MB, "
        f"through the API {s['api_rss_growth_mb']:.1f} MB"
    )
    print("  sha256 of both stored copies = the file's: yes")
