"""Twilio: the translator from signed voice webhooks to call events (no HTTP, no database).

The HTTP routes that receive the webhooks and answer with TwiML are ``webhooks.twilio.views``.
"""
