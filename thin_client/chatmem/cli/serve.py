"""``chatmem serve``: the HTTP gateway (needs the extra: pip install 'chatmem[http]')."""

from __future__ import annotations

import logging
from typing import Annotated

import psycopg
import typer

from chatmem import target
from chatmem.cli.output import FLAG, fail

# Is the role a superuser, and which table in public (conversation_sessions
# first) does it own, itself or through a role it inherits from?
_PRIVILEGES = """
SELECT r.rolname, r.rolsuper,
       (SELECT c.relname FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
           AND pg_has_role(r.oid, c.relowner, 'USAGE')
         ORDER BY c.relname <> 'conversation_sessions', c.relname LIMIT 1)
  FROM pg_roles r WHERE r.rolname = current_user
"""
_REMEDY = ("connect as a login role that is a member of chatmem_app only, e.g. "
           "CREATE ROLE chatmem_gateway LOGIN PASSWORD '...' IN ROLE chatmem_app (see docs/security.md)")


def serve(
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="TCP port.")] = 5000,
    database_url: Annotated[
        str | None, typer.Option("--database-url", metavar="URL",
                                 help="Server to use (default: DATABASE_URL, else embedded).")
    ] = None,
    database: Annotated[
        str | None, typer.Option("--database", "-d", metavar="NAME",
                                 help="Another database on the same server (e.g. chatmem_test).")
    ] = None,
    pool_size: Annotated[int, typer.Option("--pool-size", metavar="N", help="Database connections at most.")] = 10,
    no_prepare: Annotated[
        bool, typer.Option("--no-prepare", metavar=FLAG,
                           help="No server-side prepared statements (PgBouncer in transaction mode).")
    ] = False,
) -> None:
    """Serve the older system's HTTP endpoints and the browser page.

    On the embedded cluster the gateway connects as chatmem_app_login, a member of
    chatmem_app only; a given URL's role is used as given (with a warning if it is a
    superuser or owns the tables).

    Example: chatmem serve --port 5000, then open http://127.0.0.1:5000/
    """
    try:
        import uvicorn

        from chatmem.gateway import create_app
    except ImportError:
        fail("the HTTP gateway is not installed", "pip install 'chatmem[http]'")
    url = target.app_url("app", database_url, database=database)
    if database_url or target.external_url():
        _warn_if_privileged(url)
    # POST /api/auth/oidc: CHATMEM_BROKER_DATABASE_URL, else the embedded
    # cluster's chatmem_identity_broker_login, else none (the route says why).
    broker = target.broker_url(database_url, database=database)
    app = create_app(url, pool_size=pool_size, prepare_threshold=None if no_prepare else 5,
                     broker_conninfo=broker)
    _log_gateway_events()
    typer.echo(f"chatmem gateway on http://{host}:{port}/ (OpenAPI: /openapi.json)", err=True)
    # The access log shows method, path and status: never a body or a header.
    # proxy_headers=False: uvicorn would otherwise replace the client address
    # with X-Forwarded-For for any peer on 127.0.0.1, so a local caller could
    # dodge the per-address auth limit; the gateway decides which proxies to
    # believe (CHATMEM_TRUSTED_PROXIES).
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


def _log_gateway_events() -> None:
    """The gateway's own log (chatmem.gateway: failures, and in development reset tokens) on stderr at INFO."""
    gateway_log = logging.getLogger("chatmem.gateway")
    if not gateway_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        gateway_log.addHandler(handler)
        gateway_log.setLevel(logging.INFO)
        gateway_log.propagate = False


def _warn_if_privileged(url: str) -> None:
    """One line on stderr when the gateway's role could do far more than the API lets it.

    A browser-facing process should hold only chatmem_app's EXECUTE grants: as a
    superuser or the tables' owner, one bug in it could read or rewrite every row.
    It warns and goes on: the owner of the server decides.
    """
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute(_PRIVILEGES).fetchone()
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        typer.echo(f"warning: could not check the gateway's database role: {reason}", err=True)
        return
    if row is None:
        return
    role, superuser, owned = row
    if superuser:
        what = "a superuser"
    elif owned:
        what = f"which owns table {owned}"
    else:
        return
    typer.echo(f"warning: the gateway connects as role {role}, {what}: {_REMEDY}", err=True)
