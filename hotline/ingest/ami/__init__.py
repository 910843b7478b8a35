"""Asterisk Manager Interface (AMI) adapter: wire protocol, supervised listener, simulator, CLI."""
