"""Cross-cutting plumbing shared by every app: request context, errors, canonical JSON, API glue.

`core` holds no business rules and imports no project app; every app may import it.
"""
