"""Errors raised by the tooling side of chatmem (cluster, migrations).

Errors raised by the SQL API are mapped in :mod:`chatmem.api_errors`.
"""


class SetupError(Exception):
    """Something outside chatmem's control blocks the command; the message says what to do."""
