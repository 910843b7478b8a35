"""Telephony webhooks from hosted providers (Twilio), translated into hotline call events."""
