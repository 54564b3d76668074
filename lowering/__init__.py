"""Passes from VM IR to thread IR (target-neutral: they read a target-capability value)."""
