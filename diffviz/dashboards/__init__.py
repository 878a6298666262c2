"""Dashboards of the notebooks: one module per notebook topic."""
