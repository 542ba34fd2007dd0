"""What the broker keeps of a secret (a user's token, a session's credential,
a dashboard ticket or cookie): its sha256, never the secret itself."""

from __future__ import annotations

import hashlib


def secret_hash(secret: str | bytes) -> str:
    return hashlib.sha256(secret if isinstance(secret, bytes) else secret.encode()).hexdigest()
