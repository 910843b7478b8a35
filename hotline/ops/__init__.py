"""Operations: checks, health and readiness, metrics, backups."""
