"""Referrals: the offer catalogue, consent-checked referrals, appointments and reports."""
