"""Provider plugins: they turn a plan into reality (DESIGN §5)."""
