#!/bin/bash
# Build Asterisk 22 from its public source for recording captures (scripts/asterisk/record.py).
# Nothing of Asterisk enters the repository: the source is read from a git checkout you give
# (ASTERISK_SRC, e.g. a clone of github.com/asterisk/asterisk), built in a temp directory and
# installed under ASTERISK_ROOT (default /tmp/asterisk-root).
#   ASTERISK_SRC=/path/to/asterisk.git ASTERISK_TAG=22.10.1 bash scripts/asterisk/build.sh
set -euo pipefail
SRC=${ASTERISK_SRC:?give ASTERISK_SRC, a git checkout or bare clone of asterisk}
TAG=${ASTERISK_TAG:-22.10.1}
ROOT=${ASTERISK_ROOT:-/tmp/asterisk-root}
BUILD=$(mktemp -d /tmp/asterisk-build.XXXXXX)
need=(libjansson-dev libedit-dev libcurl4-openssl-dev libxml2-dev uuid-dev libsqlite3-dev libssl-dev)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "build.sh: installing with apt-get: ${missing[*]}"
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null
fi
gitdir=$SRC; [ -d "$SRC/.git" ] && gitdir=$SRC/.git
git --git-dir="$gitdir" archive "$TAG" | tar -x -C "$BUILD"
cd "$BUILD"
./configure --prefix="$ROOT" --without-pjproject-bundled --without-jansson-bundled --with-libcurl >/dev/null
make menuselect.makeopts >/dev/null
# Only what the captures need (see record.py's docstring): no sound packages, no PJSIP.
# chan_iax2 (needs res_crypto, libssl-dev): the trunk between the two PBXes of the trunk_overflow
# captures (IAXVAR carries hotline's call identity across it); func_dialplan: DIALPLAN_EXISTS in
# the overflow branch.
menuselect/menuselect --disable-all \
  --enable app_queue --enable app_dial --enable app_directed_pickup --enable app_playback \
  --enable app_originate --enable app_read --enable app_chanspy --enable app_mixmonitor \
  --enable app_stack --enable app_exec --enable app_echo --enable app_verbose \
  --enable func_callerid --enable func_global --enable func_strings --enable func_logic \
  --enable func_curl --enable func_uri --enable func_db --enable func_channel \
  --enable func_timeout --enable func_cut --enable func_math --enable func_env \
  --enable pbx_config --enable bridge_simple --enable bridge_builtin_features \
  --enable bridge_softmix --enable bridge_native_rtp --enable bridge_holding \
  --enable app_confbridge --enable res_timing_timerfd --enable res_curl --enable chan_bridge_media \
  --enable res_musiconhold --enable format_wav --enable format_sln --enable format_pcm \
  --enable codec_ulaw --enable codec_alaw --enable codec_resample \
  --enable app_senddtmf --enable app_waituntil --enable chan_iax2 --enable res_crypto --enable func_dialplan \
  --disable-category MENUSELECT_CORE_SOUNDS --disable-category MENUSELECT_MOH \
  --disable-category MENUSELECT_EXTRA_SOUNDS menuselect.makeopts >/dev/null
make -j"$(nproc)" >/dev/null
make install >/dev/null
echo "build.sh: Asterisk $TAG installed in $ROOT (build tree $BUILD can be removed)"
