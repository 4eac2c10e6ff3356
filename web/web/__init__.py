"""Bündnis web front end: server-rendered pages over the gateway's public API.

Every page asks the gateway with the signed-in user's own access token, so a page shows exactly
what the API lets that user see; the front end keeps no data of its own beyond the session.
"""
