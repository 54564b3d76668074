"""CPU backend: the lowered thread program as LLVM IR, run through llvmlite's MCJIT."""
