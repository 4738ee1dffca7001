#!/usr/bin/env bash
# Installs what building and testing Vigil needs on a Debian machine (run as root), skipping
# whatever is already there. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust (rustup) first" >&2
    exit 1
fi

# Rust components used by the test command.
installed=$(rustup component list --installed 2>/dev/null || true)
for component in rustfmt clippy; do
    if ! grep -q "^${component}" <<<"$installed"; then
        echo "setup: rustup component add $component"
        rustup component add "$component"
    fi
done

# Guest components are built for WebAssembly (wasm32-wasip2).
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "setup: rustup target add wasm32-wasip2"
    rustup target add wasm32-wasip2
fi

# Media tools and test peers (ffmpeg, GStreamer RTSP server, Mosquitto, libav*-dev), when the
# media scripts are present.
if [ -x scripts/setup-media.sh ]; then
    scripts/setup-media.sh
fi
# The S3-compatible server of the archive upload tests (built once, ~4 min).
if [ -x scripts/setup-s3.sh ]; then
    scripts/setup-s3.sh
fi
# Headless Chromium and playwright-core for the web page tests.
if [ -x scripts/setup-web.sh ]; then
    scripts/setup-web.sh
fi
echo "setup: ready"
