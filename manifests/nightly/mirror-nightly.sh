#!/bin/sh
# One nightly collection, incremental to the last night that succeeded. Used by the systemd timer and the
# Kubernetes CronJob in this directory (the CronJob carries a copy in its ConfigMap; tests keep them equal).
#
# Settings (environment):
#   MIRROR_SET         the MirrorSet to collect                    (default /etc/mirror/mirrorset.yaml)
#   MIRROR_KEY         the collector's signing key                 (default /etc/mirror/keys/collector.key)
#   MIRROR_KEY_PASSWORD  its password, when the key is encrypted
#   MIRROR_DATA        bundles, reports, cache and sequence record (default /var/lib/mirror)
#   MIRROR_SPLIT_SIZE  cut each bundle into volumes of this size, e.g. 4G (default: one .tar)
#   MIRROR_BIN         the mirror command                          (default mirror)
# Registry credentials come from REGISTRY_AUTH_FILE (a containers auth file) or MIRROR_REGISTRY_USERNAME and
# MIRROR_REGISTRY_PASSWORD; Git credentials from MIRROR_GIT_USERNAME and MIRROR_GIT_PASSWORD.
#
# Each night writes $MIRROR_DATA/bundles/NIGHT.tar (or NIGHT.tar.000, .001, ... when split), NIGHT.inventory.json
# and NIGHT.report.json. latest.inventory.json points at the last good night; the next night carries only what
# changed since it. The exit code is collect's (0 ok, 2 bad input, 3 verification, 4 network); on failure
# latest.inventory.json is left alone, so the next night is incremental to the last good one.
set -eu

set_file=${MIRROR_SET:-/etc/mirror/mirrorset.yaml}
key=${MIRROR_KEY:-/etc/mirror/keys/collector.key}
data=${MIRROR_DATA:-/var/lib/mirror}
mirror=${MIRROR_BIN:-mirror}
bundles=$data/bundles
mkdir -p "$bundles" "$data/cache"

night=$(date -u +%Y%m%dT%H%M%SZ)
set -- "$set_file" -o "$bundles/$night.tar" --key "$key" --state-file "$data/collector.state.json" \
  --cache-dir "$data/cache" --report "$bundles/$night.report.json" --log-format json
if [ -e "$bundles/latest.inventory.json" ]; then
  set -- "$@" --since "$bundles/latest.inventory.json"
fi
if [ -n "${MIRROR_SPLIT_SIZE:-}" ]; then
  set -- "$@" --split-size "$MIRROR_SPLIT_SIZE"
fi

"$mirror" collect "$@"
ln -sfn "$night.inventory.json" "$bundles/latest.inventory.json"
echo "mirror-nightly: wrote $bundles/$night.tar* (report $bundles/$night.report.json)" >&2
