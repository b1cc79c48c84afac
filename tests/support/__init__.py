"""Helpers the test tiers share: services started for the tests, probes and views."""
