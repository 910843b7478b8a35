"""Twilio webhooks: signed voice webhooks in, TwiML out, call events to the one ingestor.

``hotline.app`` mounts ``router`` and calls ``setup_app`` from this package.
"""

from webhooks.twilio.views import router, setup_app

__all__ = ["router", "setup_app"]
