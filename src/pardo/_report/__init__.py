"""Reporting: progress bars, joblib's verbose lines, and the replay of what workers printed or logged.

It reads no ambient configuration: the front hands it what to show.
"""
