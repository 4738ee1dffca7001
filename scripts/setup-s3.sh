#!/bin/bash
# Installs s3s-fs 0.14.1, an S3-compatible server on a local folder that checks SigV4 signatures
# (the archive upload tests use it). Skips when it is already installed. ~4 min to build once.
set -euo pipefail
if command -v s3s-fs >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/s3s-fs" ]; then
  echo "setup-s3: s3s-fs present"
  exit 0
fi
start=$(date +%s)
log=$(mktemp /tmp/setup-s3.XXXXXX.log)
if ! cargo install s3s-fs@0.14.1 --features binary --locked >"$log" 2>&1; then
  echo "setup-s3: cargo install s3s-fs failed; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
rm -f "$log"
echo "setup-s3: installed s3s-fs 0.14.1 in $(( $(date +%s) - start )) s"
