#!/usr/bin/env bash
# Applied to the debootstrapped tree (argument 1) before it is imported as localhost/courier-base.
set -euo pipefail
root=$1
# No services may be started by package scripts inside an image build.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
# Small images: no recommends, no docs, no cached packages.
cat > "$root/etc/apt/apt.conf.d/90courier" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT
cat > "$root/etc/dpkg/dpkg.cfg.d/90courier" <<'DPKG'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/info/*
DPKG
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
