#!/bin/sh
@MARKER@
# Installed by `lockd hooks install`; a hook that was here before runs first
# (kept as $HOOK.legacy). Remove with `lockd hooks uninstall`.
# Plain sh without subshells: this runs on every commit.
HOOK=@HOOK@
INSTALL_PYTHON=@PYTHON@
legacy="${0%/*}/$HOOK.legacy"
status=0
if [ "$HOOK" = "pre-push" ]; then
  input=$(cat)
  if [ -x "$legacy" ] && [ -z "$LOCKD_IN_LEGACY_HOOK" ]; then
    printf '%s\n' "$input" | LOCKD_IN_LEGACY_HOOK=1 "$legacy" "$@" || status=$?
  fi
  if [ -x "$INSTALL_PYTHON" ]; then
    printf '%s\n' "$input" | "$INSTALL_PYTHON" -m lockd hook-run "$HOOK" "$@" || status=$?
  elif command -v lockd >/dev/null 2>&1; then
    printf '%s\n' "$input" | lockd hook-run "$HOOK" "$@" || status=$?
  else
    echo "lockd: not installed here; $HOOK not checked" >&2
  fi
  exit $status
fi
if [ -x "$legacy" ] && [ -z "$LOCKD_IN_LEGACY_HOOK" ]; then
  LOCKD_IN_LEGACY_HOOK=1 "$legacy" "$@" || status=$?
fi
if [ -x "$INSTALL_PYTHON" ]; then
  "$INSTALL_PYTHON" -m lockd hook-run "$HOOK" "$@" </dev/null || status=$?
elif command -v lockd >/dev/null 2>&1; then
  lockd hook-run "$HOOK" "$@" </dev/null || status=$?
else
  echo "lockd: not installed here; $HOOK not checked" >&2
fi
exit $status
