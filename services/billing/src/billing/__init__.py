"""Switchboard billing: TMF678 Customer Bill Management v4."""
