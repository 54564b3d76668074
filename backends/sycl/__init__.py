"""SYCL backend (Intel GPUs): target capabilities shared with the CPU emulation."""
