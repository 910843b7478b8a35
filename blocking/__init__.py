"""Time-limited blocking of abusive and prank callers' numbers (issue #17 item 3).

A block keeps only the caller-number hash (the same keyed HMAC as caller history) and a masked
form; it is applied before the queue (Twilio voice webhook, Asterisk dialplan lookup), never to a
withheld or unavailable number, and a blocked caller can always press a key to reach a supervisor.
"""
