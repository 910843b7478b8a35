"""Callback and follow-up worklists: missed and abandoned calls to call back, records with a follow-up date."""
