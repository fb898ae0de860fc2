"""Retention: reason codes, customer segments, batch scores and the offers the team acts on."""
