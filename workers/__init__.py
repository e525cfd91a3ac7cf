"""Background workers: arq settings, job functions and the in-process runner."""
