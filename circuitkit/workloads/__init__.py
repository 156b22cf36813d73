"""Workloads run on simulated crossbars, each a small module on the core (see README)."""
