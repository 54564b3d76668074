"""From a Python function to VM IR: parse the AST, fold compile-time values, emit instructions."""
