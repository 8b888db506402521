"""Studies and tables behind the figures in docs/ (inversion study, mel -> wav table,
BASIS calls study, prior quality)."""
