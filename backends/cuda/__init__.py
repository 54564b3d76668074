"""The CUDA backend: NVRTC compiles generated CUDA C++ to cubins, the driver API runs them.

Importing this package needs nothing from CUDA: each submodule imports cuda-python only when it
is first used, so machines without it still import tilevm and get a clear error on use.
"""
