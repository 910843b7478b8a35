"""Security of stored data: encryption at rest, key rotation, retention."""
