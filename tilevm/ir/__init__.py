"""The VM IR: types, nodes, printer and verifier."""
