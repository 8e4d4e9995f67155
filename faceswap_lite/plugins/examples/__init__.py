"""User-style example plugins (not loaded by default; tests load them as a user would)."""
