"""Switchboard trouble ticket service (TMF621 Trouble Ticket Management v4)."""
