"""Cross-cutting services every app uses: the clock, public ids, errors, health."""
