"""Switchboard ordering service: TMF622 Product Ordering v4."""
