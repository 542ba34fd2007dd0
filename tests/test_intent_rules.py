"""The claim rules (lockd.core.intent_rules) in process, on a fake clock that
moves in milliseconds: TTLs, what a refusal says and to whom, notify-when-free,
shared against exclusive, a peer announcing again. No broker, no sleeps; the
last tests run the service over a real SQLite store on the same fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lockd.broker.registry import Registration, Registry
from lockd.client.api import Api
from lockd.core import intent_rules as rules
from lockd.core.announce import Announce
from lockd.core.errors import LockdError
from lockd.core.models import Intent, Peer
from lockd.core.overlap import IntentIndex
from lockd.server.schemas import AnnounceBody
from lockd.store.sqlite import SqliteStore

REPO = "git:example.com/org/proj"
T0 = 1_700_000_000.0


class FakeClock:
    """T0 plus whole milliseconds: `T0 + 0.005` after 4 ms and 1 ms, to the bit."""

    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> float:
        return T0 + self.ms / 1000

    def advance(self, ms: int) -> None:
        self.ms += ms


def peer(peer_id: str, name: str, summary: str = "") -> Peer:
    return Peer(peer_id, name, "agent", "test", "host", "/w", REPO, "/w", summary=summary)


ALICE, BOB, CAROL = (
    peer("p-a", "alice", "refactoring the API"),
    peer("p-b", "bob"),
    peer("p-c", "carol"),
)
PEERS = {p.peer_id: p for p in (ALICE, BOB, CAROL)}


def index(*held: tuple[str, str, str] | tuple[str, str, str, float]) -> IntentIndex:
    """(peer_id, pattern, mode[, expires_at]) each, ids i1, i2... in order."""
    idx = IntentIndex()
    for n, (peer_id, pattern, mode, *expiry) in enumerate(held, 1):
        expires = expiry[0] if expiry else None
        idx.add(Intent(f"i{n}", peer_id, REPO, pattern, mode, f"why {n}", T0 - 60, expires))
    return idx


def ask(*pats: str, **fields: Any) -> Announce:
    """A request as the service decides it: checked, its patterns normalized."""
    return rules.checked(Announce(REPO, list(pats), fields.pop("reason", "work"), **fields), 1000)


# ---- the request ---------------------------------------------------------------
def test_one_request_from_the_client_to_the_http_edge() -> None:
    """The HTTP body has exactly the request's fields, and both ways of making
    the client's call send the same body, which the edge turns back into it."""
    assert set(AnnounceBody.model_fields) == set(Announce._fields)
    request = Announce(REPO, ["src/"], "why", "shared", 60.0, True, True)
    body = Api.announce(request).body
    assert body == Api.announce(REPO, ["src/"], "why", "shared", 60.0, True, True).body
    assert AnnounceBody(**body).request() == request


@pytest.mark.parametrize(
    ("fields", "kind", "says"),
    [
        ({"mode": "mine"}, "invalid", "mode 'mine' is not one of: exclusive, shared"),
        ({"reason": "  "}, "invalid", "reason is empty: say why"),
        ({"reason": "x" * 11}, "too_large", "reason is over 10 characters"),
        ({"ttl_seconds": 0}, "invalid", "ttl_seconds=0 must be more than 0"),
        ({"ttl_seconds": rules.MAX_TTL_SECONDS + 1}, "invalid", "and at most 2592000"),
        (
            {"ttl_seconds": 99999999.0},
            "invalid",
            "ttl_seconds=99999999 must be more than 0 and at most 2592000 (30 days)",
        ),  # as the agent sent it (an int arrives as a float)
        ({"repo_id": ""}, "invalid", "repo is empty"),
        (
            {"patterns": ["../x"]},
            "invalid",
            "leaves the repository with ..: only files inside it can be claimed",
        ),  # and what to do instead
        ({"patterns": ["a*" * 33]}, "invalid", "the limit is 32 in a pattern"),
    ],
)
def test_a_bad_request_is_refused_before_any_decision(
    fields: dict[str, Any], kind: str, says: str
) -> None:
    with pytest.raises(LockdError) as err:
        rules.checked(Announce(REPO, ["src/"], "work")._replace(**fields), max_reason_chars=10)
    assert err.value.kind == kind
    assert says in err.value.message


def test_a_checked_request_has_its_patterns_normalized() -> None:
    raw = Announce(REPO, ["./src/app.py", "src/", "src/"], "work", "shared", 5.0, True, True)
    got = rules.checked(raw, max_reason_chars=10)
    assert got == raw._replace(patterns=["/src/app.py", "src/"])


# ---- TTLs ------------------------------------------------------------------------
def test_a_claim_past_its_deadline_blocks_nobody() -> None:
    clock = FakeClock()
    idx = index(("p-b", "src/", "exclusive", T0 + 0.005))
    assert isinstance(rules.decide(idx, "p-a", ask("src/app.py"), clock()), rules.Clash)
    clock.advance(4)
    assert isinstance(rules.decide(idx, "p-a", ask("src/app.py"), clock()), rules.Clash)
    clock.advance(1)  # at the deadline itself it has lapsed
    assert isinstance(rules.decide(idx, "p-a", ask("src/app.py"), clock()), rules.Grant)


def test_a_ttl_counts_from_the_decision() -> None:
    clock = FakeClock()
    clock.advance(250)
    timed = rules.decide(IntentIndex(), "p-a", ask("src/", ttl_seconds=0.5), clock())
    assert isinstance(timed, rules.Grant)
    assert [(i.since, i.expires_at) for i in timed.intents] == [(T0 + 0.25, T0 + 0.75)]
    untimed = rules.decide(IntentIndex(), "p-a", ask("src/"), clock())
    assert isinstance(untimed, rules.Grant)
    assert untimed.intents[0].expires_at is None


# ---- grants ----------------------------------------------------------------------
def test_a_grant_is_new_intents_with_their_records() -> None:
    grant = rules.decide(IntentIndex(), "p-a", ask("src/", "*.md", reason="docs"), T0)
    assert isinstance(grant, rules.Grant)
    assert [(i.intent_id, i.peer_id, i.pattern, i.mode, i.since) for i in grant.intents] == [
        ("", "p-a", "src/", "exclusive", T0),
        ("", "p-a", "*.md", "exclusive", T0),
    ]
    assert grant.events == [
        rules.Event(
            "granted", "p-a", "p-a", REPO, {"pattern": p, "mode": "exclusive", "reason": "docs"}
        )
        for p in ("src/", "*.md")
    ]
    assert grant.dashboard == {
        "repo": REPO,
        "event": "granted",
        "peer_id": "p-a",
        "patterns": ["src/", "*.md"],
    }
    stored = [Intent("i7", "p-a", REPO, "src/", "exclusive", "docs", T0)]
    assert rules.grant_answer(stored) == {
        "granted": True,
        "intents": [
            {
                "intent_id": "i7",
                "pattern": "src/",
                "mode": "exclusive",
                "reason": "docs",
                "expires_at": None,
            }
        ],
        "conflicts": [],
    }


def test_announcing_a_held_pattern_again_updates_it() -> None:
    """Same id and since; new mode, reason, deadline and watch flag. A peer
    never clashes with itself."""
    idx = index(("p-a", "src/", "exclusive"))
    again = ask("src/", "docs/", reason="now shared", mode="shared", ttl_seconds=1.0)
    grant = rules.decide(idx, "p-a", again._replace(notify_when_free=True), T0)
    assert isinstance(grant, rules.Grant)
    renewed, new = grant.intents
    assert renewed == Intent(
        "i1", "p-a", REPO, "src/", "shared", "now shared", T0 - 60, T0 + 1, True
    )
    assert (new.intent_id, new.since) == ("", T0)
    assert idx.by_id["i1"].mode == "exclusive"  # the index is not changed by deciding


def test_a_clash_on_one_pattern_grants_none() -> None:
    idx = index(("p-b", "/src/api/", "exclusive"))
    clash = rules.decide(idx, "p-a", ask("/docs/", "src/api/x.py"), T0)
    assert isinstance(clash, rules.Clash)
    assert [[i.intent_id for i in per] for per in clash.clashes] == [[], ["i1"]]


@pytest.mark.parametrize(
    ("held", "wanted", "clashes"),
    [
        ("shared", "shared", False),
        ("shared", "exclusive", True),
        ("exclusive", "shared", True),
        ("exclusive", "exclusive", True),
    ],
)
def test_shared_meets_only_exclusive(held: str, wanted: str, clashes: bool) -> None:
    idx = index(("p-b", "src/", held))
    got = rules.decide(idx, "p-a", ask("src/app.py", mode=wanted), T0)
    assert isinstance(got, rules.Clash) is clashes


# ---- refusals --------------------------------------------------------------------
def test_a_refusal_lists_the_conflicts_and_tells_each_holder() -> None:
    idx = index(
        ("p-b", "src/api/", "exclusive"), ("p-c", "*.py", "shared"), ("p-x", "src/", "exclusive")
    )
    clash = rules.decide(idx, "p-a", ask("src/api/app.py", reason="fix login"), T0)
    assert isinstance(clash, rules.Clash)
    refusal = rules.refuse(clash, ALICE, PEERS, ignorecase=False)
    answer = refusal.answer
    assert (answer["granted"], answer["intents"], answer["conflicts_total"]) == (False, [], 3)
    assert answer["watching"] is False
    first = answer["conflicts"][0]
    assert {k: first[k] for k in ("peer_id", "peer_name", "pattern", "requested", "example")} == {
        "peer_id": "p-b",
        "peer_name": "bob",
        "pattern": "src/api/",
        "requested": "/src/api/app.py",
        "example": "src/api/app.py",
    }
    gone = answer["conflicts"][2]  # a holder this broker does not know: named by its id
    assert (gone["peer_name"], gone["summary"]) == ("p-x", "")
    assert [n.to for n in refusal.notices] == ["p-b", "p-c", "p-x"]
    assert refusal.notices[0] == rules.Notice(
        "p-b",
        "alice (p-a) wanted files you claim: /src/api/app.py ~ your src/api/. Their reason: "
        "fix login. Reply with send_message(to='alice') or release_intent when you are done.",
        {"event": "claim_refused", "requester_id": "p-a"},
    )
    assert refusal.event == rules.Event(
        "refused",
        "p-a",
        "p-a",
        REPO,
        {
            "patterns": ["/src/api/app.py"],
            "mode": "exclusive",
            "reason": "fix login",
            "holders": ["p-b", "p-c", "p-x"],
        },
    )
    assert refusal.watch is None
    assert refusal.dashboard["conflicts"] == answer["conflicts"]


def test_a_wide_refusal_lists_some_counts_all_and_names_ten_pairs() -> None:
    held = [("p-b", f"/pkg{n}/", "exclusive") for n in range(rules.MAX_CONFLICTS_LISTED + 5)]
    clash = rules.decide(index(*held), "p-a", ask("*.py"), T0)
    assert isinstance(clash, rules.Clash)
    refusal = rules.refuse(clash, ALICE, PEERS, ignorecase=False)
    assert len(refusal.answer["conflicts"]) == rules.MAX_CONFLICTS_LISTED
    assert refusal.answer["conflicts_total"] == rules.MAX_CONFLICTS_LISTED + 5
    (notice,) = refusal.notices
    assert notice.text.count(" ~ your ") == rules.NOTICE_PAIRS
    assert f"; and {rules.MAX_CONFLICTS_LISTED + 5 - rules.NOTICE_PAIRS} more." in notice.text


def test_notify_when_free_watches_until_nothing_blocks() -> None:
    idx = index(("p-b", "src/", "exclusive"))
    clash = rules.decide(idx, "p-a", ask("src/app.py", notify_when_free=True), T0)
    assert isinstance(clash, rules.Clash)
    refusal = rules.refuse(clash, ALICE, PEERS, ignorecase=False)
    assert refusal.answer["watching"] is True
    assert refusal.watch == rules.Watch("p-a", REPO, ["/src/app.py"], "exclusive")
    assert rules.blocked(idx, "p-a", ["/src/app.py"], "exclusive")
    assert rules.blocked(idx, "p-a", ["/src/app.py"], "shared")  # exclusive blocks shared too
    idx.remove("i1")
    assert not rules.blocked(idx, "p-a", ["/src/app.py"], "exclusive")
    assert rules.free_notice("p-a", ["/src/app.py"], REPO) == rules.Notice(
        "p-a",
        f"free now: /src/app.py in {REPO} no longer overlaps anyone's claim; "
        "announce_intent again to take it.",
        {"event": "free", "repo": REPO},
    )


# ---- the service on the same clock -----------------------------------------------
@pytest.fixture
async def registry(tmp_path: Path) -> Any:
    store = SqliteStore(tmp_path / "lockd.db")
    store.clock = FakeClock()
    await store.open()
    reg = Registry(store)
    await reg.start(sweep=False)
    yield reg
    await reg.stop()
    await store.close()


async def person(reg: Registry, name: str) -> Peer:
    found, _ = await reg.register(Registration("/w", REPO, "/w", kind="person", name=name))
    return found


async def test_a_ttl_lapses_on_the_stores_clock(registry: Registry) -> None:
    """Granted, refused, lapsed and released in fake milliseconds; what is
    recorded carries the same clock's time."""
    clock = registry.store.clock
    assert isinstance(clock, FakeClock)
    alice, bob = await person(registry, "alice"), await person(registry, "bob")
    got = await registry.intents.announce(alice, Announce(REPO, ["src/"], "work", ttl_seconds=0.02))
    assert got["granted"] and got["intents"][0]["expires_at"] == T0 + 0.02
    assert not (await registry.intents.announce(bob, Announce(REPO, ["src/a.py"], "me")))["granted"]
    clock.advance(20)
    assert registry.intents.locks(REPO) == []  # lapsed, though not yet released
    await registry.intents.expire(clock())
    assert (await registry.intents.announce(bob, Announce(REPO, ["src/a.py"], "me")))["granted"]
    events = await registry.history(repo_id=REPO)
    assert [(e["event"], e["at"]) for e in reversed(events)] == [
        ("granted", T0),
        ("refused", T0),
        ("expired", T0 + 0.02),
        ("granted", T0 + 0.02),
    ]


async def test_a_watcher_is_told_once_when_the_holder_releases(registry: Registry) -> None:
    alice, bob = await person(registry, "alice"), await person(registry, "bob")
    assert (await registry.intents.announce(alice, Announce(REPO, ["src/"], "work")))["granted"]
    watching = Announce(REPO, ["src/a.py"], "me", notify_when_free=True)
    assert (await registry.intents.announce(bob, watching))["watching"]
    await registry.intents.release(alice)
    await registry.intents.wake_watchers({REPO})  # again: told once
    free = rules.free_notice(bob.peer_id, ["/src/a.py"], REPO, "person")  # CLI words
    assert [(m.text, m.meta) for m in await registry.read_inbox(bob)] == [(free.text, free.meta)]
    told = await registry.read_inbox(alice)
    assert [m.meta["event"] for m in told] == ["claim_refused"]
