#!/usr/bin/env bash
# Install what building and testing llmux needs, if it is missing (Debian/Ubuntu).
# Safe to run again: it installs nothing that is already there.
set -euo pipefail
pkgs=(build-essential g++ cmake pkg-config libcurl4-openssl-dev libcjson-dev libcmocka-dev
      libssl-dev valgrind curl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "llmux setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
