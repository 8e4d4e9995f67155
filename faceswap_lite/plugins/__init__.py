"""Built-in plugins. They register themselves exactly as a user's plugin does."""
