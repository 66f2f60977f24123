"""``chatmem serve``: the HTTP gateway (needs the extra: pip install 'chatmem[http]')."""

from __future__ import annotations

from typing import Annotated

import typer

from chatmem import target
from chatmem.cli.output import fail


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 5000,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Server to use (default: DATABASE_URL, else embedded).")
    ] = None,
    pool_size: Annotated[int, typer.Option(help="Database connections at most.")] = 10,
    no_prepare: Annotated[
        bool, typer.Option("--no-prepare", help="No server-side prepared statements (PgBouncer in transaction mode).")
    ] = False,
) -> None:
    """Serve the older system's HTTP endpoints and the browser page.

    Example: chatmem serve --port 5000, then open http://127.0.0.1:5000/
    """
    try:
        import uvicorn

        from chatmem.gateway import create_app
    except ImportError:
        fail("the HTTP gateway is not installed", "pip install 'chatmem[http]'")
    url = target.database_url(database_url)
    app = create_app(url, pool_size=pool_size, prepare_threshold=None if no_prepare else 5)
    typer.echo(f"chatmem gateway on http://{host}:{port}/ (OpenAPI: /openapi.json)", err=True)
    # The access log shows method, path and status: never a body or a header.
    uvicorn.run(app, host=host, port=port, log_level="info")
