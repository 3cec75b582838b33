"""Switchboard payment service: TMF676 Payment Management v4 (payments, refunds, a gateway adapter)."""
