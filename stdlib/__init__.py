"""Kernels written in the tilevm language, with numpy references."""
