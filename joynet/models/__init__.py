"""Model packages: the manifest and its files on the store (``package``) and the two built-in
models (``builtin``)."""
