"""Feature groups (scikit-learn-style transformers saved as JSON) and their assembly."""
