"""Simulated traffic: personas that behave like the people the engine serves."""
