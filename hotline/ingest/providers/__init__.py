"""Telephony providers side by side: each translates its own events into ``hotline.ingest.events``."""
