"""The activity rules (lockd/core/activity.py), pure, and the broker's
refusals of bad reports (a real broker)."""

from __future__ import annotations

import pytest

from lockd.client.api import Api
from lockd.core import activity as rules
from lockd.core.errors import LockdError
from lockd.testing import Broker

SHARED_BROKER = True


def act(peer: str, checkout: str = "/a") -> rules.Activity:
    return rules.Activity(peer, "r", checkout)


def test_git_scans_replace_and_keep_since_and_edits() -> None:
    a = act("p-a")
    assert rules.merge_edits(a, ["x.py"], now=1.0) == ["x.py"]
    assert rules.replace_git(a, {"y.py": "uncommitted"}, 1, now=2.0) == ["y.py"]
    assert rules.replace_git(a, {"y.py": "unpushed", "z.py": "uncommitted"}, 2, now=3.0) == ["z.py"]
    assert a.paths == {
        "x.py": ("edited", 1.0),
        "y.py": ("unpushed", 2.0),
        "z.py": ("uncommitted", 3.0),
    }
    rules.replace_git(a, {}, 0, now=4.0)  # committed and pushed: gone, the edit stays
    assert a.paths == {"x.py": ("edited", 1.0)}
    # Git saw it first, then the client edited it: newly edited, its time kept.
    rules.replace_git(a, {"w.py": "uncommitted"}, 1, now=5.0)
    assert rules.merge_edits(a, ["w.py", "x.py"], now=6.0) == ["w.py"]
    assert a.paths["w.py"] == ("edited", 5.0)


def test_paths_are_bounded_with_a_count_of_the_rest() -> None:
    a = act("p-a")
    many = {f"f{i}.py": "uncommitted" for i in range(rules.MAX_PATHS + 7)}
    rules.replace_git(a, many, len(many) + 3, now=1.0)
    assert len(a.paths) == rules.MAX_PATHS and a.more == 10
    rules.merge_edits(a, ["new.py"], now=2.0)
    assert "new.py" not in a.paths and a.more == 11


@pytest.mark.parametrize(
    ("kind_a", "kind_b", "same_checkout", "clash"),
    [
        ("edited", "edited", True, True),
        ("edited", "uncommitted", True, False),  # one checkout: the same git state
        ("uncommitted", "uncommitted", True, False),
        ("uncommitted", "uncommitted", False, True),
        ("unpushed", "edited", False, True),
    ],
)
def test_what_overlaps(kind_a: str, kind_b: str, same_checkout: bool, clash: bool) -> None:
    a, b = act("p-a", "/a"), act("p-b", "/a" if same_checkout else "/b")
    a.paths["f.py"], b.paths["f.py"] = (kind_a, 1.0), (kind_b, 2.0)
    assert rules.clashing(a, b, "f.py") is clash
    assert rules.overlaps(a, b) == (["f.py"] if clash else [])
    assert not rules.clashing(a, a, "f.py")


def test_notice_names_file_peer_time_and_claims() -> None:
    text = rules.notice_text("agent-b", "p-b", [("src/x.py", "uncommitted", 0.0, "")])
    assert "agent-b (p-b)" in text
    assert f"agent-b has uncommitted changes to src/x.py since {rules.clock_time(0.0)}" in text
    assert "neither of you claims it" in text
    assert rules.line("bob", "edited", 0.0).startswith("bob edited this file since ")


@pytest.mark.parametrize(
    "body",
    [
        {"edited": ["/etc/passwd"]},
        {"edited": ["../outside.py"]},
        {"edited": [""]},
        {"edited": [], "scan": {"uncommitted": ["a/../../b"]}},
        {"edited": [], "scan": {"uncommitted": [], "secret": "x"}},
        {"edited": ["x"] * 5001},
    ],
)
def test_bad_reports_are_refused_and_change_nothing(broker: Broker, body: dict) -> None:
    peer = broker.register(cwd="/tmp/act-bad", repo_id="dir:/tmp/act-bad")
    with pytest.raises(LockdError) as err:
        peer.call(Api.report_activity(**body))
    assert err.value.kind in ("invalid", "too_large")
    assert broker.client().call(Api.activity("dir:/tmp/act-bad"))["peers"] == []


def test_verdicts_only_between_live_peers_of_the_callers_repo(broker: Broker) -> None:
    a = broker.register(cwd="/tmp/act-v", repo_id="dir:/tmp/act-v")
    me = a.peer["peer_id"]  # type: ignore[attr-defined]
    with pytest.raises(LockdError) as err:
        a.call(Api.put_forecast("dir:/tmp/act-v", [{"a": me, "b": "p-nobody", "conflict": True}]))
    assert "both must be live peers" in err.value.message
    with pytest.raises(LockdError) as err:
        a.call(Api.put_forecast("dir:/elsewhere", []))
    assert err.value.kind == "forbidden"
