"""Scenario files: the setup of a study, validated at the boundary."""
