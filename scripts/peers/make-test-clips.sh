#!/bin/bash
# Deterministic test clips for Vigil's tests and demo.
#
# usage: scripts/peers/make-test-clips.sh OUTDIR
#   env: SIZE=WxH (default 1280x720; 640x360 is ~2x faster)   FORCE=1 regenerate existing clips
#        OSD=seconds|frames|none (see below). Existing files are not checked against SIZE/OSD:
#        use a different OUTDIR or FORCE=1 when changing them.
#
# Produces (skipped when the file already exists):
#   OUTDIR/camera-h264.mp4  H.264 Main, 30 fps, 20 s, no B-frames, closed GOP, IDR every 30 frames
#   OUTDIR/camera-h265.mp4  H.265 Main (hvc1), same timing, closed GOP (IDR, not CRA), no B-frames
# Content: static scene (ground, dark road, two buildings), no noise; a bright red box crosses the
# road left to right while 8 < t < 12 s (frames 241..359) and is absent otherwise (the box differs
# from the road by ~65 luma levels, and is saturated red for HSV colour detectors).
# On-screen display at the top left (env OSD):
#   OSD=seconds (default) "CAM1 00:00:08": changes once per second, on the key frame, like a real
#                camera clock; outside the event the only changed pixels are this digit flip
#   OSD=frames   " 00:00:08.033 f=0241": file time + frame number, changes EVERY frame (~800 px
#                at 720p, i.e. a permanent small "motion" in that band: mask it in motion tests)
#   OSD=none     nothing
# Needs: ffmpeg with libx264, libx265, drawtext, and fonts-dejavu-core (scripts/setup-media.sh).
set -euo pipefail

OUT=${1:?usage: make-test-clips.sh OUTDIR}
SIZE=${SIZE:-1280x720}
W=${SIZE%x*}; H=${SIZE#*x}
FPS=30; DUR=20; GOP=30
EV_START=8; EV_END=12
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf
mkdir -p "$OUT"

BG="color=c=0x4a5d3a:s=${W}x${H}:r=${FPS}:d=${DUR}"
BG+=",drawbox=x=0:y=ih*0.6:w=iw:h=ih*0.25:color=0x2a2a2a:t=fill"           # road (dark)
BG+=",drawbox=x=iw*0.1:y=ih*0.2:w=iw*0.25:h=ih*0.35:color=0x8b4513:t=fill"  # building 1
BG+=",drawbox=x=iw*0.6:y=ih*0.15:w=iw*0.3:h=ih*0.4:color=0xa0a0a0:t=fill"   # building 2
OBJ="color=c=0xff3030:s=$((W/12))x$((H/6)):r=${FPS}:d=${DUR}"
VF="[0][1]overlay=x='-w+(t-${EV_START})*(W+w)/$((EV_END-EV_START))':y='H*0.62':enable='between(t,${EV_START},${EV_END})'"
OSD=${OSD:-seconds}
case "$OSD" in
  seconds) TEXT="CAM1 00\\:00\\:%{eif\\:trunc(t)\\:d\\:2}" ;;
  frames)  TEXT="%{pts\\:hms} f=%{eif\\:n\\:d\\:4}" ;;
  none)    TEXT="" ;;
  *) echo "make-test-clips: OSD must be seconds|frames|none" >&2; exit 2 ;;
esac
if [ -n "$TEXT" ] && [ ! -r "$FONT" ]; then
  echo "make-test-clips: $FONT missing (apt-get install fonts-dejavu-core): no OSD" >&2; TEXT=""
fi
if [ -n "$TEXT" ]; then
  VF+=",drawtext=fontfile=${FONT}:fontsize=$((H/24)):fontcolor=white:box=1:boxcolor=black@1:boxborderw=4"
  VF+=":x=8:y=8:text='${TEXT}'"
fi
VF+=",format=yuv420p[v]"

# Same container settings for both: no global metadata, bit-exact muxing, moov first.
COMMON=(-map "[v]" -t "$DUR" -an -map_metadata -1 -fflags +bitexact -flags:v +bitexact -movflags +faststart)

gen() {  # gen NAME encoder-args...
  local name=$1; shift
  local dst="$OUT/$name" tmp
  if [ -s "$dst" ] && [ "${FORCE:-0}" != 1 ]; then echo "make-test-clips: $dst exists, skipped"; return; fi
  tmp="$OUT/.tmp-$$-$name"
  local t0=$(date +%s.%N)
  ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi -i "$BG" -f lavfi -i "$OBJ" \
    -filter_complex "$VF" "${COMMON[@]}" "$@" -f mp4 "$tmp" || { rm -f "$tmp"; exit 1; }
  mv -f "$tmp" "$dst"
  awk -v a="$t0" -v b="$(date +%s.%N)" -v f="$dst" -v s="$(stat -c %s "$dst")" \
    'BEGIN{printf "make-test-clips: %s (%d kB) in %.1f s\n", f, s/1024, b-a}'
}

gen camera-h264.mp4 -c:v libx264 -preset veryfast -profile:v main -bf 0 \
  -g $GOP -keyint_min $GOP -sc_threshold 0 -x264-params open-gop=0
gen camera-h265.mp4 -c:v libx265 -preset ultrafast -tag:v hvc1 \
  -x265-params "no-open-gop=1:keyint=$GOP:min-keyint=$GOP:scenecut=0:bframes=0:log-level=error"
# The H.264 clip with a 440 Hz AAC-LC tone (48 kHz mono), for audio recording tests.
if [ ! -s "$OUT/camera-h264-aac.mp4" ] || [ "${FORCE:-0}" = 1 ]; then
  ffmpeg -hide_banner -nostdin -loglevel error -y -i "$OUT/camera-h264.mp4" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$DUR" \
    -map 0:v -map 1:a -c:v copy -c:a aac -b:a 64k -ac 1 -shortest -movflags +faststart \
    "$OUT/.tmp-aac.mp4" && mv -f "$OUT/.tmp-aac.mp4" "$OUT/camera-h264-aac.mp4"
fi
