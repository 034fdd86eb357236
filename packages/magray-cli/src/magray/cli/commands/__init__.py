"""One module per command group; each imports its library inside the command bodies."""
