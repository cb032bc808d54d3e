"""What users look at: plots and the introspection of plugins and stored data."""
