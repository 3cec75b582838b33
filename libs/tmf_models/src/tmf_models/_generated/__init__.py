"""Models generated from the TM Forum specs by scripts/generate.py. Do not edit."""
