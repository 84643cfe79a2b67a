#!/bin/sh
# One nightly collection, incremental to the last night that succeeded. Used by the systemd timer and the
# Kubernetes CronJob in this directory (the CronJob carries a copy in its ConfigMap; tests keep them equal).
#
# Settings (environment):
#   MIRROR_SET         the MirrorSets to collect: files, or directories standing for their *.yaml and *.yml
#                      files, separated by ':'                   (default /etc/mirror/mirrorset.yaml)
#   MIRROR_KEY         the collector's signing key                 (default /etc/mirror/keys/collector.key)
#   MIRROR_KEY_PASSWORD  its password, when the key is encrypted
#   MIRROR_DATA        bundles, reports, cache and sequence record (default /var/lib/mirror)
#   MIRROR_STATE_FILE  the key's sequence record                   (default $MIRROR_DATA/collector.state.json)
#   MIRROR_SPLIT_SIZE  cut each bundle into volumes of this size, e.g. 4G (default: one .tar)
#   MIRROR_BIN         the mirror command                          (default mirror)
# Registry credentials come from REGISTRY_AUTH_FILE (a containers auth file) or MIRROR_REGISTRY_USERNAME and
# MIRROR_REGISTRY_PASSWORD; Git credentials from MIRROR_GIT_USERNAME and MIRROR_GIT_PASSWORD.
#
# One key, one sequence: `mirror collect` reads MIRROR_STATE_FILE too, so a manual collect with this key in the
# same environment (MIRROR_STATE_FILE set as here) continues the job's sequence, and the job's does the same. A
# record a manual collect left beside the key is counted when it is ahead, with a warning.
#
# Each night writes $MIRROR_DATA/bundles/NIGHT.tar (or NIGHT.tar.000, .001, ... when split),
# NIGHT.tar.inventory.json and NIGHT.report.json. latest.inventory.json points at the last good night's
# inventory copy; the next night carries only what changed since it. The exit code is collect's (0 ok, 2 bad
# input, 3 verification, 4 network); on failure latest.inventory.json is left alone, so the next night is
# incremental to the last good one.
set -eu

key=${MIRROR_KEY:-/etc/mirror/keys/collector.key}
data=${MIRROR_DATA:-/var/lib/mirror}
mirror=${MIRROR_BIN:-mirror}
MIRROR_STATE_FILE=${MIRROR_STATE_FILE:-$data/collector.state.json}
export MIRROR_STATE_FILE
bundles=$data/bundles
mkdir -p "$bundles" "$data/cache"

# The MirrorSet files, as the positional parameters.
set --
set -f  # split MIRROR_SET on ':' only, without expanding what it names
old_ifs=$IFS
IFS=:
for entry in ${MIRROR_SET:-/etc/mirror/mirrorset.yaml}; do
  IFS=$old_ifs
  set +f
  if [ -d "$entry" ]; then
    for file in "$entry"/*.yaml "$entry"/*.yml; do
      if [ -f "$file" ]; then set -- "$@" "$file"; fi
    done
  elif [ -n "$entry" ]; then
    set -- "$@" "$entry"
  fi
  set -f
  IFS=:
done
IFS=$old_ifs
set +f
if [ $# -eq 0 ]; then
  echo "mirror-nightly: MIRROR_SET names no MirrorSet file: ${MIRROR_SET:-}" >&2
  exit 2
fi

night=$(date -u +%Y%m%dT%H%M%SZ)
# A night stopped or killed before it ended leaves its partial tar (.NIGHT.tar.partial): this run takes over the
# newest one's name, so collect resumes from it (what it holds is hashed, never trusted). Only one collect
# would take (a regular file of this user, one link): another would refuse this night and every next one.
if [ -z "${MIRROR_SPLIT_SIZE:-}" ]; then
  for partial in "$bundles"/.[0-9]*T[0-9]*Z.tar.partial; do
    if [ ! -L "$partial" ] && [ -n "$(find "$partial" -prune -type f -links 1 -user "$(id -u)" 2>/dev/null)" ]; then
      night=${partial##*/.}
      night=${night%.tar.partial}
    fi
  done
fi
set -- "$@" -o "$bundles/$night.tar" --key "$key" --cache-dir "$data/cache" \
  --report "$bundles/$night.report.json" --log-format json
if [ -e "$bundles/latest.inventory.json" ]; then
  set -- "$@" --since "$bundles/latest.inventory.json"
fi
if [ -n "${MIRROR_SPLIT_SIZE:-}" ]; then
  set -- "$@" --split-size "$MIRROR_SPLIT_SIZE"
fi

"$mirror" collect "$@"
ln -sfn "$night.tar.inventory.json" "$bundles/latest.inventory.json"
echo "mirror-nightly: wrote $bundles/$night.tar* (report $bundles/$night.report.json)" >&2
