"""Figure functions, one module per analyzer area; each maps a result to matplotlib Figures."""
