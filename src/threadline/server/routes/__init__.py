"""Thin HTTP routes: authenticate, parse, call a service, present the result."""
