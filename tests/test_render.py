"""Each surface names its own commands (lockd.core.render.steps, error_text)."""

from __future__ import annotations

import pytest

from lockd.core.errors import LockdError
from lockd.core.render import SURFACES, error_text, peers, remaining, steps, surface_of

TEMPLATE = "Reply with {send_to} or {release}; see {peers}, {locks}, {claim}"


@pytest.mark.parametrize(
    ("surface", "said"),
    [
        ("cli", "Reply with `lockd send 'al ice' MESSAGE` or `lockd release`; see `lockd peers`, "
                "`lockd locks`, `lockd claim`"),
        ("mcp", "Reply with send_message(to='al ice') or release_intent; see list_peers, "
                "list_locks, announce_intent"),
        ("dashboard", "Reply with Send to al ice or Release; see the Peers table, the Claims "
                      "table, `lockd claim`"),
        ("http", "Reply with POST /v1/messages to 'al ice' or POST /v1/intents/release; see "
                 "GET /v1/peers, GET /v1/intents, POST /v1/intents"),
    ],
)  # fmt: skip
def test_each_surface_its_own_words(surface: str, said: str) -> None:
    assert steps(TEMPLATE, surface, to="al ice") == said


def test_forcing_is_named_where_it_can_be_done() -> None:
    """Only a person (CLI, dashboard) and scripts can force a release; an agent is told
    to ask, not pointed at a flag its tools lack."""
    said = {s: steps("{force}", s) for s in SURFACES}
    assert said["cli"] == "`lockd release --force ID`"
    assert said["dashboard"] == "Force release"
    assert said["http"] == 'POST /v1/intents/release with "force": true'
    assert "release_intent" not in said["mcp"] and "lockd release --force" in said["mcp"]


def test_where_a_peer_reads() -> None:
    assert (surface_of("person"), surface_of("agent")) == ("cli", "mcp")


def test_an_error_crosses_the_wire_and_is_worded_again() -> None:
    """The HTTP body says the step as a route; a client gets the bare message back and its
    edge words the step its own way."""
    exc = LockdError(
        "not_found", "no peer with id or name 'x'", next="see {peers} for who is there"
    )
    body = {**exc.to_json(), "message": error_text(exc.message, exc.detail, "http")}
    assert body["message"] == "no peer with id or name 'x': see GET /v1/peers for who is there"
    back = LockdError.from_json(body, 404)
    assert back.message == exc.message and back.detail == exc.detail
    said = {s: error_text(back.message, back.detail, s) for s in SURFACES}
    assert said["cli"].endswith("see `lockd peers` for who is there")
    assert said["mcp"].endswith("see list_peers for who is there")
    assert error_text("plain", {}, "cli") == "plain"


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(5400, "1h30m"), (90, "1m30s"), (28800, "8h"), (28771, "8h"), (86400 * 30, "30d"),
     (86400 + 43200, "1d12h"), (59, "59s"), (3599.6, "1h")],
)  # fmt: skip
def test_time_left_as_typed(seconds: float, said: str) -> None:
    """`--ttl 1h30m` is confirmed as 1h30m, not rounded to 2h: two units at most,
    rounded in the smaller, the way durations are typed."""
    assert remaining(1000.0 + seconds, 1000.0) == said


def test_peers_by_name_with_the_id_only_where_it_is_needed() -> None:
    names = {"p-1": "bob", "p-2": "claude", "p-3": "claude"}
    assert peers(["p-1"], names) == "bob"
    assert peers(["p-1", "p-2", "p-3"], names) == "bob, claude (p-2), claude (p-3)"
    assert peers(["p-1", "p-9"], names) == "bob, p-9"  # no name known: the id
