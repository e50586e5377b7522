"""Guests: domain lifecycle, domain XML (templates), live introspection, first-boot seeds."""
