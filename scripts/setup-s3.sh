#!/bin/bash
# Installs the object stores the archive tests run against, each skipped when present:
#  * s3s-fs 0.14.1, an S3-compatible server on a local folder that checks SigV4 signatures
#    (built once with cargo, ~4 min);
#  * Azurite 3.37.0, Microsoft's Azure Storage emulator, and @azure/storage-blob 12.32.0 (the
#    tests read back what Vigil wrote with Microsoft's SDK), from the npm registry into
#    target/store-tools (~20 s; Node.js and npm from Debian if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if command -v s3s-fs >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/s3s-fs" ]; then
  echo "setup-s3: s3s-fs present"
else
  start=$(date +%s)
  echo "setup-s3: building s3s-fs 0.14.1 with cargo install (once, ~4 min)"
  log=$(mktemp /tmp/setup-s3.XXXXXX.log)
  if ! cargo install s3s-fs@0.14.1 --features binary --locked >"$log" 2>&1; then
    echo "setup-s3: cargo install s3s-fs failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  rm -f "$log"
  echo "setup-s3: installed s3s-fs 0.14.1 in $(( $(date +%s) - start )) s"
fi

AZURITE=3.37.0
AZURE_SDK=12.32.0
PREFIX="$ROOT/target/store-tools"
version_of() {
  local pj="$PREFIX/node_modules/$1/package.json"
  [ -f "$pj" ] && node -e 'console.log(require(process.argv[1]).version)' "$pj" 2>/dev/null
}
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || { echo "setup-s3: Node.js and npm are missing; run as root to install them" >&2; exit 1; }
  echo "setup-s3: apt-get install nodejs npm (for Azurite)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ "$(version_of azurite)" = "$AZURITE" ] && [ "$(version_of @azure/storage-blob)" = "$AZURE_SDK" ]; then
  echo "setup-s3: Azurite $AZURITE present"
else
  start=$(date +%s)
  mkdir -p "$PREFIX"
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$PREFIX" \
    "azurite@$AZURITE" "@azure/storage-blob@$AZURE_SDK" >/dev/null \
    || { echo "setup-s3: npm install azurite@$AZURITE @azure/storage-blob@$AZURE_SDK failed" >&2; exit 1; }
  [ -x "$PREFIX/node_modules/.bin/azurite-blob" ] || { echo "setup-s3: azurite-blob missing after npm install" >&2; exit 1; }
  echo "setup-s3: installed Azurite $AZURITE and @azure/storage-blob $AZURE_SDK in $(( $(date +%s) - start )) s"
fi
