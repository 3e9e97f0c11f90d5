"""Pure rules of trackd: no I/O, no imports from the other packages."""
