"""Notifications: appointment reminders and every partner's inbox."""
