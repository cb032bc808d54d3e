"""Writing: make (plugins computed into storage), persist, the join's persist, strax import."""
