"""Seats: what fills them (models, scripted stand-ins, later people and replays)."""
