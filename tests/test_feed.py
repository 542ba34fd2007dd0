"""The change feed's records and their one codec (lockd/core/feed.py): what a
broker on a shared database tells the others, as PostgreSQL's NOTIFY carries it."""

from __future__ import annotations

import json

import psycopg
import pytest

from lockd.core import feed
from lockd.core.errors import LockdError
from lockd.core.models import Intent, Message

MESSAGE = Message("m7", "p-1", "ana", "hello ✓", 1.25, "bob", "message", False, {"k": "v"})
INTENT = Intent("i3", "p-1", "github.com/o/r", "src/**", "exclusive", "refactor", 2.5, 9.5, True)
CHANGES: list[feed.Change] = [
    feed.MessageSent(7, MESSAGE, ("p-2", "p-3")),
    feed.MessageSent(7),
    feed.PeerChanged("p-1"),
    feed.ClaimPut("github.com/o/r", 4, True, "i3", INTENT),
    feed.ClaimPut("github.com/o/r", 4, False, "i3"),
    feed.ClaimDropped("github.com/o/r", 5, False, "i3"),
    feed.ClaimDropped("github.com/o/r", None, False, "i3"),  # from before claim versions
    feed.TokensChanged("alice"),
]


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: type(c).__name__)
def test_every_change_round_trips(change: feed.Change) -> None:
    assert feed.decode(feed.encode("r-1", change)) == feed.Notice("r-1", change)


# What brokers of this version have sent since the feed began: still read alike.
@pytest.mark.parametrize(
    ("text", "change"),
    [
        ('{"r": "r-1", "k": "p", "id": "p-1"}', feed.PeerChanged("p-1")),
        ('{"r": "r-1", "k": "u", "name": "alice"}', feed.TokensChanged("alice")),
        ('{"r": "r-1", "k": "m", "id": 7}', feed.MessageSent(7)),
        (
            '{"r": "r-1", "k": "c", "repo": "x", "v": 2, "ic": true, "drop": "i3"}',
            feed.ClaimDropped("x", 2, True, "i3"),
        ),
        (
            '{"r": "r-1", "k": "c", "repo": "x", "v": 2, "ic": false, "put_id": "i3"}',
            feed.ClaimPut("x", 2, False, "i3"),
        ),
    ],
)
def test_the_wire_format_is_the_one_brokers_already_speak(text: str, change: feed.Change) -> None:
    assert feed.decode(text) == feed.Notice("r-1", change)
    assert json.loads(feed.encode("r-1", change)) == json.loads(text)


def test_a_message_notice_carries_the_message_and_its_recipients() -> None:
    data = json.loads(feed.encode("r-1", CHANGES[0]))
    assert data == {"r": "r-1", "k": "m", "id": 7, "to": ["p-2", "p-3"], "m": MESSAGE.as_dict()}


def test_an_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(LockdError, match=r"unknown kind 'z' \(this broker reads c, m, p, u\)"):
        feed.decode('{"r": "r-1", "k": "z", "id": 1}')


@pytest.mark.parametrize(
    "text",
    ["not json", "[1, 2]", '{"k": "p", "id": "p-1"}', '{"r": "r-1", "k": "p"}',
     '{"r": "r-1", "k": "c", "repo": "x", "v": "two", "drop": "i1"}',
     '{"r": "r-1", "k": "c", "repo": "x", "put": {"pattern": "a"}}'],
)  # fmt: skip
def test_a_damaged_notice_is_a_clear_error(text: str) -> None:
    with pytest.raises(LockdError, match="unreadable change notice") as caught:
        feed.decode(text)
    assert caught.value.kind == "internal"


def test_a_change_too_big_to_carry_names_what_readers_fetch_by_id() -> None:
    """Over the limit, a message notice keeps its id, a put its intent id."""
    big = Message("m9", "p-1", "ana", "x" * 9000, 1.0)
    sent = feed.MessageSent(9, big, ("p-2",))
    text = feed.encode("r-1", sent)
    assert feed.decode(text).change == feed.MessageSent(9)
    put = feed.ClaimPut("x", 3, False, "i3", Intent("i3", "p-1", "x", "a", "shared", "r" * 9000, 1))
    assert feed.decode(feed.encode("r-1", put)).change == feed.ClaimPut("x", 3, False, "i3")


def test_the_limit_counts_utf8_bytes_not_characters() -> None:
    limit = 1000
    fits = feed.MessageSent(1, Message("m1", "p", "a", "x" * 700, 1.0), ("p-2",))
    assert feed.decode(feed.encode("r-1", fits, limit)).change == fits
    wide = feed.MessageSent(1, Message("m1", "p", "a", "é" * 700, 1.0), ("p-2",))  # 1,400 bytes
    assert feed.decode(feed.encode("r-1", wide, limit)).change == feed.MessageSent(1)
    for change in (fits, wide):
        assert len(feed.encode("r-1", change, limit).encode()) <= limit


def test_a_change_whose_ids_alone_are_too_big_is_refused_naming_them() -> None:
    change = feed.ClaimDropped("r" * 8000, 1, False, "i1")
    with pytest.raises(LockdError, match=r"its repo is 8000 bytes \('rrr.*shorter") as caught:
        feed.encode("r-1", change)
    assert caught.value.kind == "too_large"


def test_postgres_takes_the_biggest_notice_encode_makes(pg_url: str) -> None:
    """NOTIFY_LIMIT is under what PostgreSQL refuses (8000 bytes), whatever
    the characters: the largest full notice reaches a listener whole."""
    overhead = len(feed.encode("r-1", feed.MessageSent(1, Message("m1", "p", "a", "", 1.0), ())))
    text = "é" * ((feed.NOTIFY_LIMIT - overhead) // 2)
    change = feed.MessageSent(1, Message("m1", "p", "a", text, 1.0), ())
    payload = feed.encode("r-1", change)
    assert feed.NOTIFY_LIMIT - 2 <= len(payload.encode()) <= feed.NOTIFY_LIMIT
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("LISTEN lockd_feed_test")
        conn.execute("SELECT pg_notify('lockd_feed_test', %s)", (payload,))
        (note,) = list(conn.notifies(timeout=5, stop_after=1))
    assert feed.decode(note.payload) == feed.Notice("r-1", change)
