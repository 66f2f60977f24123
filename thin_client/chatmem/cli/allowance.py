"""``chatmem allowance``: how many messages this device's guest or user has left today (issue 12)."""

from __future__ import annotations

import typer

from chatmem import state
from chatmem.cli.chat import JsonOpt, _client, _count, _when, _who
from chatmem.cli.output import emit_json, guarded


@guarded
def allowance(json_out: JsonOpt = False) -> None:
    """Show how many messages you may still send in the rolling 24 hours (the user's after login, else this guest's).

    A message past the allowance is refused until the time this shows.

    Example: chatmem allowance --json
    """
    st = state.load()
    with _client() as client:
        row = client.get_allowance(st.identity)
    if json_out:
        emit_json(row)
        return
    sent = f"{_count(row.used, 'message')} sent in the last 24 hours"
    if row.allowed is None:
        line = f"No limit for {_who(st)}: {sent}."
    else:
        left = max(0, row.allowed - row.used)
        line = f"{_count(left, 'message')} of {row.allowed} left for {_who(st)} ({sent})."
        if row.resets_at is not None:
            line += f" The oldest counts until {_when(row.resets_at)}."
    typer.echo(line)
