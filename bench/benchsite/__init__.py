"""The Django project the benchmark serves: one trivial view per authentication scheme."""
