"""Calls hotline places itself: a callback (counsellor's phone first, then the caller) and a
supervisor's listen-in; through the AMI listener (Asterisk ``Originate``) or Twilio's REST API."""
