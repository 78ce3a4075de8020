#!/usr/bin/env bash
# Makes this machine able to run Courier's container tests without Docker:
#   1. installs what is missing (podman, runc, debootstrap, ...) from Debian packages;
#   2. writes /etc/containers/containers.conf with the settings this sandbox needs;
#   3. builds localhost/courier-base:bookworm with debootstrap (only when missing), then the
#      RabbitMQ and Mosquitto images from test/containers/*/Containerfile (only when missing or
#      when their build context changed);
#   4. starts `podman system service` (the Docker API) on a unix socket unless it already answers;
#   5. prints DOCKER_HOST=unix://... as the LAST line of stdout (everything else goes to stderr).
#
# Idempotent: on a prepared machine it only checks, and takes seconds.
# Usage:  eval "export $(scripts/container-engine.sh | tail -n 1)"
# Env:    COURIER_PODMAN_SOCKET   socket path (default /run/podman/podman.sock)
#         COURIER_DEBIAN_MIRROR   Debian mirror for debootstrap (default: the one apt uses)
#         COURIER_REBUILD_IMAGES=1  rebuild the broker images even if up to date
# Needs root (it installs packages and runs rootful podman). See docs/testing.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SOCK=${COURIER_PODMAN_SOCKET:-/run/podman/podman.sock}
BASE_IMAGE=localhost/courier-base:bookworm
RABBIT_IMAGE=localhost/courier-rabbitmq:test
MOSQ_IMAGE=localhost/courier-mosquitto:test
SERVICE_LOG=/var/log/courier-podman-service.log
T0=$(date +%s)

log() { echo "[container-engine +$(($(date +%s) - T0))s] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (rootful podman, apt-get)"

# ---------------------------------------------------------------- 1. packages
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
want=(podman runc debootstrap netavark aardvark-dns iptables uidmap curl ca-certificates)
missing=()
for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    > /var/log/courier-apt.log 2>&1 \
    || { tail -n 30 /var/log/courier-apt.log >&2; die "apt-get failed (log: /var/log/courier-apt.log)"; }
  log "packages installed"
else
  log "packages present"
fi

# ---------------------------------------------------------------- 2. engine configuration
# Two sandbox limits (docs/testing.md): containers may not raise nofile/nproc limits beyond
# what the sandbox allows, and crun refuses the hybrid cgroup layout, so runc is used.
CONF=/etc/containers/containers.conf
want_conf='# Written by Courier scripts/container-engine.sh (see docs/testing.md).
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=30000:30000"]

[engine]
runtime = "runc"

[network]
network_backend = "netavark"
'
mkdir -p /etc/containers
if [ -f "$CONF" ] && ! grep -q 'Written by Courier scripts/container-engine.sh' "$CONF"; then
  # Someone else's configuration: do not overwrite it, but say what it must contain.
  if grep -q 'runtime *= *"runc"' "$CONF" && grep -q 'nofile=20000' "$CONF"; then
    log "$CONF is not ours but has the needed settings"
  else
    die "$CONF exists and is not ours; it needs: $(echo "$want_conf" | tr '\n' ' ')"
  fi
elif [ "$(cat "$CONF" 2>/dev/null)" != "$(printf '%s' "$want_conf")" ]; then
  printf '%s' "$want_conf" > "$CONF"
  log "wrote $CONF"
else
  log "$CONF up to date"
fi

# ---------------------------------------------------------------- 3. images
debian_mirror() {
  if [ -n "${COURIER_DEBIAN_MIRROR:-}" ]; then echo "$COURIER_DEBIAN_MIRROR"; return; fi
  local m=""
  # deb822 sources first, then the one-line format; the first non-security Debian URI.
  m=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
      | grep -v -- '-security' | grep '/debian/\?$' | head -n 1 || true)
  if [ -z "$m" ]; then
    m=$(grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '{print $2}' | grep -v -- '-security' | grep '/debian/\?$' | head -n 1 || true)
  fi
  [ -n "$m" ] || die "no Debian mirror found in apt sources; set COURIER_DEBIAN_MIRROR"
  echo "$m"
}

if podman image exists "$BASE_IMAGE"; then
  log "$BASE_IMAGE present"
else
  mirror=$(debian_mirror)
  dir=$(mktemp -d /var/tmp/courier-rootfs.XXXXXX)
  trap 'rm -rf "$dir"' EXIT
  log "debootstrap --variant=minbase bookworm (a minute or so)"
  debootstrap --variant=minbase bookworm "$dir" "$mirror" > /var/log/courier-debootstrap.log 2>&1 \
    || { tail -n 30 /var/log/courier-debootstrap.log >&2; die "debootstrap failed (log: /var/log/courier-debootstrap.log)"; }
  bash "$ROOT/test/containers/base/prepare-rootfs.sh" "$dir"
  tar -C "$dir" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >&2
  rm -rf "$dir"
  trap - EXIT
  log "$BASE_IMAGE imported"
fi

context_hash() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16; }

build_image() { # image context-dir
  local image=$1 ctx=$2 h have
  h=$(context_hash "$ctx")
  have=$(podman image inspect --format '{{index .Labels "courier.context"}}' "$image" 2>/dev/null || true)
  if [ "$have" = "$h" ] && [ -z "${COURIER_REBUILD_IMAGES:-}" ]; then
    log "$image up to date ($h)"
    return
  fi
  log "building $image from ${ctx#"$ROOT"/}"
  podman build --quiet --pull=never --build-arg "CONTEXT_HASH=$h" -t "$image" -f "$ctx/Containerfile" "$ctx" \
    > /var/log/courier-build-"$(basename "$ctx")".log 2>&1 \
    || { tail -n 30 /var/log/courier-build-"$(basename "$ctx")".log >&2; die "building $image failed"; }
  log "$image built"
}
build_image "$RABBIT_IMAGE" "$ROOT/test/containers/rabbitmq"
build_image "$MOSQ_IMAGE" "$ROOT/test/containers/mosquitto"

# ---------------------------------------------------------------- 4. the Docker API
ping() { curl -fsS --max-time 3 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }
# A service started from a directory that was deleted since (a CI clone removed after its run)
# still answers _ping, but every container it starts fails: conmon inherits the working
# directory ("Failed to get working directory", HTTP 500 "write child: broken pipe"). Replace it.
for pid in $(pgrep -f "podman system service .*unix://$SOCK" || true); do
  case "$(readlink "/proc/$pid/cwd" 2>/dev/null || true)" in
  *' (deleted)')
    log "the podman service (pid $pid) runs in a deleted directory: restarting it"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    ;;
  esac
done
if ping; then
  log "Docker API answers on $SOCK"
else
  mkdir -p "$(dirname "$SOCK")"
  rm -f "$SOCK"
  log "starting podman system service on $SOCK (log: $SERVICE_LOG)"
  # setsid + nohup: survives this script and the shell that ran it. From /: the containers'
  # conmon inherits the service's working directory, which must outlive the checkout.
  # Every descriptor redirected on the subshell itself: nothing may keep this script's stdout open
  # (CI reads it through $(...), which waits for the last writer).
  (cd / && exec setsid nohup podman system service --time=0 "unix://$SOCK") >> "$SERVICE_LOG" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    ping && break
    sleep 0.5
  done
  ping || { tail -n 20 "$SERVICE_LOG" >&2; die "podman system service does not answer on $SOCK"; }
  log "Docker API answers on $SOCK"
fi

log "ready in $(($(date +%s) - T0))s"
echo "DOCKER_HOST=unix://$SOCK"
