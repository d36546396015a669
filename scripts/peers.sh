#!/usr/bin/env bash
# Installs the programs nobody here wrote that the interop tests and labs talk to (Debian packages).
# Each area lists its packages in scripts/peers.d/<area>.txt (one per line, # comments).
set -euo pipefail
cd "$(dirname "$0")"
mapfile -t pkgs < <(cat peers.d/*.txt | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Services some packages start on install (dovecot, pure-ftpd...) are not wanted: tests start their own.
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
$SUDO chmod +x /usr/sbin/policy-rc.d
$SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
echo "peers installed: ${pkgs[*]}"
