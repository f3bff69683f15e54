"""The built-in gopher protocol plugin for loader."""
