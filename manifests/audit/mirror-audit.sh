#!/bin/sh
# One audit of the high side's targets against the import journal. Used by the systemd timer and the Kubernetes
# CronJob in this directory (the CronJob carries a copy in its ConfigMap; tests keep them equal).
#
# Settings (environment):
#   MIRROR_TRUST       the trust policy: its state file's journal is read  (default /etc/mirror/trust/policy.yaml)
#   MIRROR_REGISTRY    the registry the imports write to, https://HOST[:PORT][/PREFIX]                (required)
#   MIRROR_GIT         the Git base the imports push to, https://HOST/BASE                    (default: none)
#   MIRROR_AUDIT_KEY   sign a statement of every clean audit with this key                  (default: none)
#   MIRROR_KEY_PASSWORD  its password, when the key is encrypted
#   MIRROR_DATA        reports and statements are kept in $MIRROR_DATA/audit             (default /var/lib/mirror)
#   MIRROR_AUDIT_ARGS  more flags, e.g. "--only-journaled" or "--ca-file /etc/mirror/ca.pem"
#   MIRROR_BIN         the mirror command                                                     (default mirror)
# Registry credentials come from REGISTRY_AUTH_FILE (a containers auth file) or MIRROR_REGISTRY_USERNAME and
# MIRROR_REGISTRY_PASSWORD; Git credentials from MIRROR_GIT_USERNAME and MIRROR_GIT_PASSWORD; as for import.
#
# Each run writes $MIRROR_DATA/audit/TIME.json (the --json report: every drift with its code) and, when the audit
# is clean and MIRROR_AUDIT_KEY is set, TIME.intoto.json (the signed statement). The exit code is audit's: 0 clean,
# 5 drift, 3 the journal damaged, 4 a target unreachable, 2 bad settings; the unit or the Job fails on any but 0,
# which is what to alert on.
set -eu

trust=${MIRROR_TRUST:-/etc/mirror/trust/policy.yaml}
registry=${MIRROR_REGISTRY:?set MIRROR_REGISTRY to the registry the imports write to}
data=${MIRROR_DATA:-/var/lib/mirror}
mirror=${MIRROR_BIN:-mirror}
out=$data/audit
mkdir -p "$out"

when=$(date -u +%Y%m%dT%H%M%SZ)
set -- --trust "$trust" --registry "$registry" --json --log-format json
if [ -n "${MIRROR_GIT:-}" ]; then
  set -- "$@" --git "$MIRROR_GIT"
fi
if [ -n "${MIRROR_AUDIT_KEY:-}" ]; then
  set -- "$@" --statement "$out/$when.intoto.json" --key "$MIRROR_AUDIT_KEY"
fi
set -f  # MIRROR_AUDIT_ARGS is split into words, never globbed
# shellcheck disable=SC2086
set -- "$@" ${MIRROR_AUDIT_ARGS:-}
set +f

status=0
"$mirror" audit "$@" > "$out/$when.json.partial" || status=$?
mv "$out/$when.json.partial" "$out/$when.json"
echo "mirror-audit: exit $status, report $out/$when.json" >&2
exit "$status"
