#!/bin/bash
# Idempotent installer of what the browser playback test (tests/web/playback.mjs) needs
# (Debian 12, root):
#   - Chromium (apt `chromium`, used headless at /usr/bin/chromium), only if missing;
#   - Node.js + npm (apt `nodejs npm`), only if `node` is missing;
#   - playwright-core@1.65.1 under target/web-tools (npm --no-save), only if missing.
# Playwright's own browser download is never used (it cannot be fetched here): the test
# drives the system Chromium. `apt-get update` runs only when an apt install is needed.
# Prints one line saying what it did. Set SUDO=sudo to run as a non-root user.
set -euo pipefail

PW_VERSION=1.65.1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX="$ROOT/target/web-tools"
SUDO=${SUDO:-}

fail() { echo "setup-web: $*" >&2; exit 1; }

apt_pkgs=()
[ -x /usr/bin/chromium ] || apt_pkgs+=(chromium)
command -v node >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)
# npm may be missing even when node is present.
if command -v node >/dev/null 2>&1 && ! command -v npm >/dev/null 2>&1; then apt_pkgs+=(npm); fi

did=()
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ -z "$SUDO" ] && [ "$(id -u)" -ne 0 ]; then
    fail "must run as root (or with SUDO=sudo) to install: ${apt_pkgs[*]}"
  fi
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; fail "apt-get update failed"; }
  $SUDO apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >"$log" 2>&1 \
    || { cat "$log" >&2; fail "apt-get install ${apt_pkgs[*]} failed"; }
  [ -x /usr/bin/chromium ] || fail "/usr/bin/chromium still missing after apt-get install"
  command -v node >/dev/null 2>&1 || fail "node still missing after apt-get install"
  did+=("apt: ${apt_pkgs[*]}")
fi

pw_installed() {
  local pj="$PREFIX/node_modules/playwright-core/package.json"
  [ -f "$pj" ] && node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' "$pj" "$PW_VERSION"
}
if ! pw_installed; then
  mkdir -p "$PREFIX"
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$PREFIX" \
    "playwright-core@$PW_VERSION" >/dev/null || fail "npm install playwright-core@$PW_VERSION failed"
  pw_installed || fail "playwright-core@$PW_VERSION not found under $PREFIX after npm install"
  did+=("npm: playwright-core@$PW_VERSION -> target/web-tools")
fi

if [ ${#did[@]} -eq 0 ]; then
  echo "setup-web: nothing to do (chromium, node, playwright-core@$PW_VERSION present)"
else
  (IFS=';'; echo "setup-web: installed ${did[*]}")
fi
