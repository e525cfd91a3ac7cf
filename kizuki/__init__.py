"""The `kizuki` command line: the composition root for humans."""
