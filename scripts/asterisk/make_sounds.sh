#!/bin/bash
# Machine-voiced sample prompts for the Asterisk dialplan, offline: each "hotline/<name> "<text>"" line
# of deploy/asterisk/extensions.conf's header is spoken by espeak-ng's Vietnamese voice and written as
# an 8 kHz mono 16-bit WAV (what Asterisk's format_wav plays, no transcoding) in
# deploy/asterisk/sounds/vi/hotline/<name>.wav.  Samples only: have a real voice record them (README).
#   bash scripts/asterisk/make_sounds.sh            # all prompts
#   SPEED=160 OUT=/tmp/sounds bash scripts/asterisk/make_sounds.sh
# Needs espeak-ng and sox (Debian: apt-get install espeak-ng sox).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONF=${CONF:-$ROOT/deploy/asterisk/extensions.conf}
OUT=${OUT:-$ROOT/deploy/asterisk/sounds/vi/hotline}
SPEED=${SPEED:-165}   # words per minute
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "make_sounds.sh: $tool is missing (apt-get install espeak-ng sox)" >&2; exit 1; }
done
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
while IFS= read -r line; do
  name=$(sed -E 's/^;[[:space:]]+hotline\/([a-z0-9-]+)[[:space:]]+".*$/\1/' <<<"$line")
  text=$(sed -E 's/^;[[:space:]]+hotline\/[a-z0-9-]+[[:space:]]+"(.*)"[[:space:]]*$/\1/' <<<"$line")
  espeak-ng -v vi -s "$SPEED" -w "$tmp/$name.wav" -- "$text"
  # 8 kHz mono signed 16-bit, a little headroom, leading/trailing silence trimmed to 0.2 s
  sox -D "$tmp/$name.wav" -r 8000 -c 1 -b 16 -e signed-integer "$OUT/$name.wav" \
    silence 1 0.05 0.5% reverse silence 1 0.05 0.5% reverse pad 0.2 0.2 norm -3
  printf '%-22s %5.1f s\n' "$name" "$(soxi -D "$OUT/$name.wav")"
  n=$((n + 1))
done < <(grep -E '^;[[:space:]]+hotline/[a-z0-9-]+[[:space:]]+"' "$CONF")
[ "$n" -gt 0 ] || { echo "make_sounds.sh: no prompt texts found in $CONF" >&2; exit 1; }
echo "make_sounds.sh: $n prompts in $OUT"
