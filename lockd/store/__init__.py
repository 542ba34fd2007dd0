"""Storage: one interface (`Store`, in engine.py), two engines (sqlite.py, postgres.py)."""
