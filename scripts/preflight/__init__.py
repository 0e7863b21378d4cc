"""The deploy preflight's checks, one concern a module; ``scripts/doctor.py`` runs them."""
