#!/usr/bin/env bash
# Install Debian packages the project needs (as root, or through sudo when there is one).
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
