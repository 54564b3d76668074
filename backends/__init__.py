"""One subpackage per target: capabilities, renderer table, runtime adapter."""
