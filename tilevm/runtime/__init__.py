"""Launching kernels: arguments, devices, specialization."""
