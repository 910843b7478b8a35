#!/bin/sh
# Re-extract every UI string and update the catalogues (see README.md and extract.py):
#   core strings (hotline/**)        -> hotline/i18n/{vi,en}/LC_MESSAGES/messages.po (+ .mo)
#   a domain package's own strings   -> <package>/i18n/vi.po   (directory, legal_library, referral, ...)
# Existing translations are always kept (update, never overwrite).  Arguments: catalogue names
# ("core", "directory", ...; default all) and --prune to retire entries no source uses any more.
# Then translate the new empty msgstr entries.
set -eu
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m hotline.i18n.extract "$@"
