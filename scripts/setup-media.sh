#!/bin/bash
# Idempotent installer of the system packages Vigil's tooling and tests need (Debian 12, root).
#   (a) test-video generation   : ffmpeg + a font for drawtext
#   (b) RTSP test camera        : GStreamer gst-rtsp-server + Python GI bindings + plugins
#   (c) MQTT broker and clients : mosquitto, mosquitto-clients
#   (d) Rust build (ffmpeg-sys-next bindings; the libraries are opened at run time): libav*-dev, clang, libclang-dev, pkg-config, nasm
#   (e) inference stand-ins     : python3-pil, python3-numpy (decode JPEG/PNG/BMP, find the red blob)
# Packages already installed (dpkg -s) are skipped; `apt-get update` runs only if something
# is missing. Usage: scripts/setup-media.sh [--check]   (--check: list missing, install nothing,
# exit 1 if anything is missing). Set SUDO=sudo to run as a non-root user.
set -euo pipefail

PKGS=(
  # (a) test media
  ffmpeg fonts-dejavu-core curl
  # real CCTV footage for the motion-quality test (vtest.avi)
  opencv-doc
  # (b) GStreamer RTSP server (scripts/peers/rtsp-camera.py runs under /usr/bin/python3)
  python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-tools gstreamer1.0-rtsp gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  # (c) MQTT
  mosquitto mosquitto-clients
  # (e) inference stand-ins (scripts/peers/infer-server.py, HTTP, and grpc-infer-server.py, gRPC,
  #     run under /usr/bin/python3; scripts/setup.sh adds the gRPC one's packages for the tests)
  python3-pil python3-numpy
  # (d) Rust build: ffmpeg-sys-next (bindgen, types only) and openh264 asm
  libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev libavdevice-dev
  libswscale-dev libswresample-dev clang libclang-dev pkg-config nasm
  # archive catalog (rusqlite links the system SQLite)
  libsqlite3-dev
  # TLS: the system's CA roots (vigil trusts them), openssl for the tests' throwaway CA
  ca-certificates openssl
)

SUDO=${SUDO:-}
if [ -z "$SUDO" ] && [ "$(id -u)" -ne 0 ] && [ "${1:-}" != "--check" ]; then
  echo "setup-media: must run as root (or with SUDO=sudo)" >&2; exit 2
fi

# Not `dpkg -s | grep -q`: grep -q exits at the first match, dpkg gets SIGPIPE and pipefail
# turns that into a false "missing" for packages with long descriptions.
installed() { local s; s=$(dpkg -s "$1" 2>/dev/null) && grep -qx 'Status: install ok installed' <<<"$s"; }

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-media: all ${#PKGS[@]} packages already installed"
  exit 0
fi
echo "setup-media: missing ${#missing[@]}/${#PKGS[@]}: ${missing[*]}"
[ "${1:-}" = "--check" ] && exit 1

log=$(mktemp /tmp/setup-media.XXXXXX.log)
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && \
       $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "setup-media: apt-get failed; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
for p in "${missing[@]}"; do
  installed "$p" || { echo "setup-media: $p still not installed (see $log)" >&2; exit 1; }
done
n=$(grep -c '^Setting up ' "$log" || true)
rm -f "$log"
echo "setup-media: installed ${#missing[@]} requested packages ($n with dependencies) in $(( $(date +%s) - start )) s"
