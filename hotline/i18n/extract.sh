#!/bin/sh
# Re-extract every UI string of the project into messages.pot and merge it into the vi and en
# catalogues (run from anywhere; see README.md).  Then translate the new entries in vi/…/messages.po.
set -eu
cd "$(dirname "$0")/../.."
PYBABEL="${PYBABEL:-.venv/bin/pybabel}"
[ -x "$PYBABEL" ] || PYBABEL=pybabel
PACKAGES=""
for pkg in hotline webhooks directory legal_library referral daily_log; do
  [ -d "$pkg" ] && PACKAGES="$PACKAGES $pkg"
done
# shellcheck disable=SC2086
"$PYBABEL" extract -F hotline/i18n/babel.cfg -k _tr:2 -k N_ -k gettext_lazy --sort-output \
  --project hotline --version 0.1.0 --msgid-bugs-address "" -o hotline/i18n/messages.pot $PACKAGES
"$PYBABEL" update -i hotline/i18n/messages.pot -d hotline/i18n --no-fuzzy-matching
"$PYBABEL" compile -d hotline/i18n --statistics
