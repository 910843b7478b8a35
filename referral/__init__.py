"""Referral handoffs to partner shelters and services: consent first, minimal data, reliable delivery."""
