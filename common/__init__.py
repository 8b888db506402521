"""What every room uses: errors, atomic writes, checks, compute (precision, CPU), figures,
the keyed result cache and the paths of shipped assets. Imports nothing of the project."""
