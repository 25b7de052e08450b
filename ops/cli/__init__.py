"""The `flashhead` command line: parses options, calls the library, renders the result."""
