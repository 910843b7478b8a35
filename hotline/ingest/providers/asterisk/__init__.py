"""Asterisk provider: translator (AMI frames → call events), supervised listener, simulator, CLI."""
