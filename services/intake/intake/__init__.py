"""Intake: participants, their needs and their consents."""
