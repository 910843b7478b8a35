"""The counsellor's live screen: server-sent events, screen pop, caller history, presence, wallboard."""
