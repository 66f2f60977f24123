"""Which server a command talks to: ``--database-url``, else ``DATABASE_URL``, else the embedded cluster.

And as whom: :func:`database_url` is the owner's or an admin's URL (for
``migrate`` and ``db``); :func:`app_url` is for what acts for a user or guest.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Mapping
from typing import Literal
from urllib.parse import quote, urlencode

from psycopg.conninfo import conninfo_to_dict

from chatmem import embedded

# What a connection acts for: "app" for users and guests (chatmem_app only),
# "assistant" for the backend that writes the model's turns (chatmem_assistant too).
AppRole = Literal["app", "assistant"]
EMBEDDED_LOGIN: dict[AppRole, str] = {"app": embedded.APP_LOGIN, "assistant": embedded.ASSISTANT_LOGIN}


def external_url() -> str | None:
    """The server named by the environment, if any."""
    return os.environ.get("DATABASE_URL") or None


def database_url(explicit: str | None = None, *, start: bool = True, database: str | None = None) -> str:
    """The libpq URL to use; starts the embedded cluster when no URL is given.

    ``database`` picks another database on the same server (used for the test
    database); it must already exist unless the caller creates it.
    """
    url = explicit or external_url()
    if url is None:
        cluster = embedded.up() if start else embedded.configured()
        return cluster.url(database)
    return with_database(url, database) if database else url


def app_url(role: AppRole = "app", explicit: str | None = None, *, database: str | None = None) -> str:
    """The URL to act for users and guests with, never the embedded superuser's.

    An explicit URL or ``DATABASE_URL`` is returned as given: which role it
    names is its owner's choice.  On the embedded cluster (started if need
    be) it names the login role for ``role``, made on first use, which needs
    a migrated database: otherwise a SetupError says to migrate.
    """
    url = explicit or external_url()
    if url is not None:
        return with_database(url, database) if database else url
    cluster, name = ready_embedded(database or embedded.default_database())
    embedded.ensure_login_roles(cluster, name)
    return cluster.url(name, user=EMBEDDED_LOGIN[role])


BROKER_URL_ENV = "CHATMEM_BROKER_DATABASE_URL"


def broker_url(explicit: str | None = None, *, database: str | None = None) -> str | None:
    """The URL for the gateway's identity-provider sign-ins (api.link_identity), or None for none.

    ``CHATMEM_BROKER_DATABASE_URL`` (a login role in chatmem_identity_broker)
    when set; else, on the embedded cluster, its ``chatmem_identity_broker_login``;
    with ``--database-url`` or ``DATABASE_URL`` and no broker URL: None (the
    route then answers 503: the gateway's own role must not be a broker).
    """
    url = os.environ.get(BROKER_URL_ENV) or None
    if url is not None:
        return with_database(url, database) if database else url
    if explicit or external_url():
        return None
    cluster, name = ready_embedded(database or embedded.default_database())
    embedded.ensure_login_roles(cluster, name)
    return cluster.url(name, user=embedded.BROKER_LOGIN)


def ready_embedded(database: str, announce: Callable[[str], None] | None = None) -> tuple[embedded.Cluster, str]:
    """The embedded cluster, made, started and migrated as far as ``database`` needs.

    First use just works: the first command that needs the database creates the
    cluster, starts it, creates the database and applies the migrations, and
    says so on one line (to stderr, or to ``announce``).  A later chatmem with
    new migrations applies them the same way.
    """
    from chatmem import migrate  # migrate needs this module: imported here, when used

    cluster = embedded.configured()
    done = []
    if not (cluster.data_dir / "PG_VERSION").exists():
        done.append(f"created the embedded PostgreSQL in {cluster.data_dir}")
    if not embedded.is_running(cluster):
        done.append("started it" if done else f"started the embedded PostgreSQL in {cluster.data_dir}")
    cluster = embedded.up(cluster)
    if embedded.create_database(cluster.url("postgres"), database):
        done.append(f"created database {database}")
    url = cluster.url(database)
    if migrate.pending_migrations(url):
        applied = migrate.migrate(url).applied
        what = "migrated it" if done else f"migrated database {database}"
        done.append(f"{what} ({len(applied)} migrations, to {applied[-1]})" if applied else what)
    if done:
        line = "chatmem: " + ", ".join(done)
        if announce is None:
            print(line, file=sys.stderr)
        else:
            announce(line)
    return cluster, database


def maintenance_url() -> str:
    """A database that surely exists on the server in use: DATABASE_URL's own, or the cluster's ``postgres``."""
    return external_url() or embedded.up().url("postgres")


def ensure_database(name: str, *, recreate: bool = False) -> None:
    """Create database ``name`` on the server in use if it is missing (dropped first with ``recreate``)."""
    embedded.create_database(maintenance_url(), name, recreate=recreate)


def with_database(url: str, database: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = database
    return dict_to_url(params)


def dict_to_url(params: Mapping[str, object], scheme: str = "postgresql") -> str:
    """Rebuild a URL from conninfo parameters (the inverse of ``conninfo_to_dict``)."""
    rest = {k: str(v) for k, v in params.items() if v is not None}
    user = rest.pop("user", "")
    password = rest.pop("password", "")
    dbname = rest.pop("dbname", "")
    host = rest.get("host", "")
    netloc = ""
    if user:
        netloc = quote(user, safe="")
        if password:
            netloc += ":" + quote(password, safe="")
        netloc += "@"
    # A socket folder or a list of hosts cannot sit in the netloc: keep them in the query.
    if host and not host.startswith("/") and "," not in host:
        netloc += host if ":" not in host else f"[{host}]"
        rest.pop("host")
        if "port" in rest and "," not in rest["port"]:
            netloc += ":" + rest.pop("port")
    query = urlencode(rest, safe="/")
    return f"{scheme}://{netloc}/{quote(dbname, safe='')}" + (f"?{query}" if query else "")


def yoyo_url(url: str) -> str:
    """yoyo needs the ``postgresql+psycopg`` scheme to use psycopg 3; libpq rejects it."""
    return dict_to_url(conninfo_to_dict(url), scheme="postgresql+psycopg")


# libpq's environment variables for the connection parameters that have one.
_LIBPQ_ENV = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE",
    "user": "PGUSER", "password": "PGPASSWORD", "passfile": "PGPASSFILE", "service": "PGSERVICE",
    "options": "PGOPTIONS", "application_name": "PGAPPNAME", "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT", "target_session_attrs": "PGTARGETSESSIONATTRS",
}


def libpq_env_exports(url: str) -> str:
    """Shell ``export`` lines for tools that take no URL whole (pg_prove splits on '=')."""
    lines = []
    for key, value in conninfo_to_dict(url).items():
        if value is None:
            continue
        if key not in _LIBPQ_ENV:
            raise ValueError(f"connection parameter {key!r} has no libpq environment variable")
        lines.append(f"export {_LIBPQ_ENV[key]}={shlex.quote(str(value))}")
    return "\n".join(lines)
