"""Notifications that last: a stored inbox per user (partner answers, escalations, sign-off requests)."""
