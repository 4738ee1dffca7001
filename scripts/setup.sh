#!/usr/bin/env bash
# Installs what building and testing Vigil needs on a Debian machine (run as root), skipping
# whatever is already there. Safe to run again. `--demo`: only what scripts/demo.sh needs (Rust's
# wasm32-wasip2 target, ffmpeg, GStreamer, Mosquitto), not the test-only peers (S3 server,
# Chromium, componentize-py, ComponentizeJS).
set -euo pipefail
cd "$(dirname "$0")/.."
demo_only=0
[ "${1:-}" = "--demo" ] && demo_only=1

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
if [ "$demo_only" = 1 ]; then
    echo "setup: ready for the demo"
    exit 0
fi
# The gRPC inference stand-in (scripts/peers/grpc-infer-server.py, tests only) runs under
# Debian's Python with its gRPC packages (it generates its stubs with grpc_tools.protoc); the
# cluster tests run Debian's NATS server (JetStream) on another "host", a network namespace made
# with iproute2's `ip netns`.
grpc_missing=()
for p in python3-grpcio python3-grpc-tools python3-protobuf nats-server iproute2; do
    status=$(dpkg -s "$p" 2>/dev/null || true)
    grep -qx 'Status: install ok installed' <<<"$status" || grpc_missing+=("$p")
done
if [ ${#grpc_missing[@]} -gt 0 ]; then
    echo "setup: apt-get install ${grpc_missing[*]} (the gRPC inference stand-in, the NATS server, ip netns)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${grpc_missing[@]}" >/dev/null
fi
# The object stores of the archive tests: s3s-fs (built once, ~4 min) and Azurite (npm).
if [ -x scripts/setup-s3.sh ]; then
    scripts/setup-s3.sh
fi
# Headless Chromium and playwright-core for the web page tests.
if [ -x scripts/setup-web.sh ]; then
    scripts/setup-web.sh
fi
# componentize-py (PyPI) builds Python filter components (guest-sdk/python,
# scripts/build-python-guest.sh; tests/python_guest.rs). Debian's own Python is externally
# managed: pip needs --break-system-packages there (pip's script goes to /usr/local/bin).
if ! command -v componentize-py >/dev/null 2>&1; then
    echo "setup: pip install componentize-py (builds Python filter components)"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    fi
    if ! python3 -m pip install --quiet --root-user-action=ignore 'componentize-py==0.25.*' 2>/dev/null; then
        python3 -m pip install --quiet --root-user-action=ignore --break-system-packages 'componentize-py==0.25.*'
    fi
    hash -r
    if ! command -v componentize-py >/dev/null 2>&1; then
        echo "setup: componentize-py installed but not on PATH ($(python3 -m site --user-base 2>/dev/null)/bin?)" >&2
        exit 1
    fi
fi
# ComponentizeJS and esbuild (npm) build JavaScript filter components (guest-sdk/js,
# scripts/build-js-guest.sh; tests/js_guest.rs), installed under target/js-tools (~400 MB, the
# way setup-web.sh installs playwright-core under target/web-tools); skipped when present.
JS_TOOLS=(@bytecodealliance/componentize-js@0.23.0 esbuild@0.28.2)
js_tools_installed() {
    node -e '
        const [dir, ...specs] = process.argv.slice(1);
        for (const spec of specs) {
            const at = spec.lastIndexOf("@");
            const pj = require(`${dir}/node_modules/${spec.slice(0, at)}/package.json`);
            if (pj.version !== spec.slice(at + 1)) process.exit(1);
        }' "$PWD/target/js-tools" "${JS_TOOLS[@]}" 2>/dev/null
}
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup: apt-get install nodejs npm (builds JavaScript filter components)"
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "setup: warning: node $(node --version) is older than the 20 ComponentizeJS 0.23 was tested with" >&2
fi
if ! js_tools_installed; then
    echo "setup: npm install ${JS_TOOLS[*]} -> target/js-tools (builds JavaScript filter components)"
    mkdir -p target/js-tools
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix target/js-tools \
        "${JS_TOOLS[@]}" >/dev/null
    if ! js_tools_installed; then
        echo "setup: ${JS_TOOLS[*]} not found under target/js-tools after npm install" >&2
        exit 1
    fi
fi
echo "setup: ready"
