"""The command line: parse, call, render. Decisions live elsewhere."""
