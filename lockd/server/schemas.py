"""Request bodies and query values as the HTTP edge validates them. Unknown
fields are refused so a typo is an error, not a silently ignored option.
Every string is checked by lockd.core.validation (the same rules the MCP tools
use): `Line` for names, summaries, reasons, patterns; `Text` for message
bodies; `PathText` for paths and repo ids; ids are ASCII digits in range."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from lockd.core import validation
from lockd.core.announce import Announce
from lockd.core.repos import MAX_KEYS
from lockd.local import config

# Process ids are C ints: a bigger one overflowed SQLite's INTEGER (a 500).
MAX_PID = 2**31 - 1
# The error types of these checks: their messages read after the field name
# ("summary holds U+0000 ..."), where pydantic's own read after a colon.
TEXT_ERRORS = ("lockd_text", "lockd_empty", "lockd_id")


def _text(kind: str, required: bool = False) -> BeforeValidator:
    """Checked before pydantic's own str validation, whose message for a lone
    surrogate ("unable to parse raw data as a unicode string") says less."""

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # pydantic says what type it wanted
        if required and not value.strip():
            raise PydanticCustomError("lockd_empty", "is empty: give some text")
        why = validation.problem(value, kind)
        if why is not None:
            raise PydanticCustomError("lockd_text", "{why}", {"why": why})
        return value

    return BeforeValidator(check)


def _id(prefix: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        why = validation.id_problem(value, prefix) if isinstance(value, str) else None
        if why is not None:
            raise PydanticCustomError("lockd_id", "{why}", {"why": why})
        return value

    return BeforeValidator(check)


Line = Annotated[str, _text(validation.LINE)]
Text = Annotated[str, _text(validation.TEXT)]
PathText = Annotated[str, _text(validation.PATH)]
Required = Annotated[str, _text(validation.LINE, required=True)]
IntentId = Annotated[str, _id("i")]
MessageId = Annotated[str, _id("m")]


class ErrorBody(BaseModel):
    """Every refusal (4xx), from the front door or a route: documented in the
    OpenAPI so that its clients parse what the broker really sends."""

    error: str
    message: str
    detail: dict[str, Any] | None = None


class Body(BaseModel):
    # NaN and Infinity are valid to Python's JSON parser, and to nothing else.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# A checkout's keys (lockd/core/repos.py): `gitdir:…`, `root:…`, `git:…`.
RepoKey = Annotated[PathText, Field(min_length=1, max_length=4096)]
RepoKeys = Annotated[list[RepoKey], Field(max_length=MAX_KEYS)]


class RegisterBody(Body):
    cwd: PathText = Field(min_length=1, max_length=4096)
    repo_id: PathText = Field(min_length=1, max_length=4096)
    repo_keys: RepoKeys = []  # every key of the repo, the steadiest first
    repo_root: PathText = Field(min_length=1, max_length=4096)
    client: Line = Field(default="unknown", max_length=64)
    kind: Literal["agent", "person"] = "agent"
    name: Line | None = Field(default=None, max_length=config.MAX_NAME_CHARS)
    summary: Line = Field(default="", max_length=config.MAX_SUMMARY_CHARS)
    pid: int | None = Field(default=None, ge=1, le=MAX_PID)
    pid_start: float | None = None
    agent_pid: int | None = Field(default=None, ge=1, le=MAX_PID)
    agent_start: float | None = None
    host: Line | None = Field(default=None, max_length=255)
    credential: Line | None = Field(default=None, max_length=256)


class SummaryBody(Body):
    summary: Line = Field(max_length=config.MAX_SUMMARY_CHARS)


class SendBody(Body):
    to: Line = Field(min_length=1, max_length=256)
    message: Text
    # Chosen by the client once per send and kept on retries: the same key
    # from the same peer is the same message, stored and delivered once.
    request_key: Line | None = Field(default=None, min_length=8, max_length=64)


class IdsBody(Body):
    message_ids: list[MessageId] = Field(max_length=10_000)


class AnnounceBody(Body):
    repo_id: PathText = Field(min_length=1, max_length=4096)
    patterns: list[Line] = Field(min_length=1)
    reason: Required
    mode: Literal["exclusive", "shared"] = "exclusive"
    ttl_seconds: float | None = None
    notify_when_free: bool = False
    ignorecase: bool = False

    def request(self) -> Announce:
        """The one place the HTTP body becomes the request every layer passes."""
        return Announce(**self.model_dump())


class ReleaseBody(Body):
    repo_id: PathText | None = None
    intent_ids: list[IntentId] | None = None
    patterns: list[Line] | None = None
    force: bool = False


class RepoBody(Body):
    repo_id: PathText = Field(min_length=1, max_length=4096)
    repo_keys: RepoKeys = []


class CheckBody(Body):
    repo_id: PathText = Field(min_length=1, max_length=4096)
    repo_keys: RepoKeys = []  # a hook's checkout, which may have gained a key
    paths: list[PathText]
    viewer: Line | None = Field(default=None, max_length=256)


class CommitNoticeBody(Body):
    repo_id: PathText = Field(min_length=1, max_length=4096)
    intent_ids: list[IntentId] = Field(max_length=10_000)
    paths: list[PathText] = Field(max_length=100_000)
    hook: Literal["pre-commit", "pre-push"]
    committer: Line | None = Field(default=None, max_length=256)
    blocked: bool = False  # the hook refused it: nothing was committed or pushed


class TokenBody(Body):
    name: Line = Field(min_length=1, max_length=64)


# ---- activity and the merge forecast (lockd/broker/activity.py) --------------
class GitScan(Body):
    """A checkout's changes as git shows them: replaces the session's last scan."""

    uncommitted: list[PathText] = Field(default_factory=list, max_length=5000)
    unpushed: list[PathText] = Field(default_factory=list, max_length=5000)
    total: int = Field(default=0, ge=0, le=10**9)  # paths git showed, beyond those sent too
    branch: Line = Field(default="", max_length=200)

    def kinds(self) -> dict[str, str]:
        out = dict.fromkeys(self.unpushed, "unpushed")
        out.update(dict.fromkeys(self.uncommitted, "uncommitted"))
        return out


class ActivityBody(Body):
    edited: list[PathText] = Field(default_factory=list, max_length=5000)
    scan: GitScan | None = None


class Verdict(Body):
    a: Line = Field(min_length=1, max_length=64)
    b: Line = Field(min_length=1, max_length=64)
    conflict: bool
    paths: list[PathText] = Field(default_factory=list, max_length=1000)
    note: Line = Field(default="", max_length=200)


class ForecastBody(Body):
    repo_id: PathText = Field(min_length=1, max_length=4096)
    verdicts: list[Verdict] = Field(max_length=500)
