"""Request bodies as the HTTP edge validates them. Unknown fields are refused
so a typo is an error, not a silently ignored option."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lockd import config

# Process ids are C ints: a bigger one overflowed SQLite's INTEGER (a 500).
MAX_PID = 2**31 - 1


class ErrorBody(BaseModel):
    """Every refusal (4xx), from the front door or a route: documented in the
    OpenAPI so that its clients parse what the broker really sends."""

    error: str
    message: str
    detail: dict[str, Any] | None = None


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterBody(Body):
    cwd: str = Field(min_length=1, max_length=4096)
    repo_id: str = Field(min_length=1, max_length=4096)
    repo_root: str = Field(min_length=1, max_length=4096)
    client: str = Field(default="unknown", max_length=64)
    kind: Literal["agent", "person"] = "agent"
    name: str | None = Field(default=None, max_length=config.MAX_NAME_CHARS)
    summary: str = Field(default="", max_length=config.MAX_SUMMARY_CHARS)
    pid: int | None = Field(default=None, ge=1, le=MAX_PID)
    pid_start: float | None = None
    agent_pid: int | None = Field(default=None, ge=1, le=MAX_PID)
    agent_start: float | None = None
    host: str | None = Field(default=None, max_length=255)
    credential: str | None = Field(default=None, max_length=256)


class SummaryBody(Body):
    summary: str = Field(max_length=config.MAX_SUMMARY_CHARS)


class SendBody(Body):
    to: str = Field(min_length=1, max_length=256)
    message: str
    # Chosen by the client once per send and kept on retries: the same key
    # from the same peer is the same message, stored and delivered once.
    request_key: str | None = Field(default=None, min_length=8, max_length=64)


class IdsBody(Body):
    message_ids: list[str] = Field(max_length=10_000)


class AnnounceBody(Body):
    repo_id: str = Field(min_length=1, max_length=4096)
    patterns: list[str] = Field(min_length=1)
    reason: str
    mode: Literal["exclusive", "shared"] = "exclusive"
    ttl_seconds: float | None = None
    notify_when_free: bool = False
    ignorecase: bool = False


class ReleaseBody(Body):
    repo_id: str | None = None
    intent_ids: list[str] | None = None
    patterns: list[str] | None = None
    force: bool = False


class CheckBody(Body):
    repo_id: str = Field(min_length=1, max_length=4096)
    paths: list[str]
    viewer: str | None = Field(default=None, max_length=256)


class CommitNoticeBody(Body):
    repo_id: str = Field(min_length=1, max_length=4096)
    intent_ids: list[str] = Field(max_length=10_000)
    paths: list[str] = Field(max_length=100_000)
    hook: Literal["pre-commit", "pre-push"]
    committer: str | None = Field(default=None, max_length=256)


class TokenBody(Body):
    name: str = Field(min_length=1, max_length=64)
