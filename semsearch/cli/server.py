"""semsearch server status|stop: the embedded PostgreSQL, which keeps running after a command exits."""

from __future__ import annotations

import sys

import click

from semsearch.cli.app import main
from semsearch.config import Settings
from semsearch.embedded import embedded_settings, embedded_status, stop_embedded
from semsearch.server import redact

#: exit status of ``server status`` when the server is not running (as ``pg_ctl status``)
NOT_RUNNING = 3


@main.group()
def server() -> None:
    """The embedded server ($SEMSEARCH_DATA_DIR): it keeps running between commands.

    \b
    Example:
      semsearch server status
      semsearch server stop
    """


@server.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Whether the embedded server runs (exit status 3 when not), its data dir, URL, pid and memory settings.

    The settings sized for this machine when the server started (shared_buffers,
    effective_cache_size, maintenance_work_mem, max_parallel_maintenance_workers) show
    who set them: semsearch, or you (left alone).

    \b
    Example:
      semsearch server status
    """
    settings = Settings.from_env()
    found = embedded_status(settings.data_dir)
    click.echo(f"embedded server: {'running' if found.running else 'not running'}")
    click.echo(f"data dir: {settings.data_dir}")
    if found.running:
        click.echo(f"url: {redact(found.url or '')}")
        click.echo(f"pid: {found.pid}")
        for setting in embedded_settings(settings.data_dir):
            click.echo(setting.describe())
    configured = ctx.find_root().obj or settings.database_url
    if configured:
        click.echo(f"commands use --url / SEMSEARCH_DATABASE_URL instead: {redact(configured)}")
    if not found.running:
        sys.exit(NOT_RUNNING)


@server.command()
def stop() -> None:
    """Stop the embedded server cleanly (sessions are disconnected; the next command starts it).

    \b
    Example:
      semsearch server stop
    """
    data_dir = Settings.from_env().data_dir
    pid = stop_embedded(data_dir)
    if pid is None:
        click.echo(f"embedded server not running (data dir {data_dir})")
    else:
        click.echo(f"stopped the embedded server (pid {pid}, data dir {data_dir})")
