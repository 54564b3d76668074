"""HIP backend (AMD GPUs): target capabilities shared with the CPU emulation."""
