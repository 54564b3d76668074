"""One subpackage per target: capabilities, renderer table, runtime adapter."""

HOST = "cpu"  # the backend of a launch whose tensors all live in host memory
