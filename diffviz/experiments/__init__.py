"""Experiment functions behind the notebooks: plain functions returning dicts of numbers and arrays."""
