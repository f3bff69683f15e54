"""The built-in ftp protocol plugin for loader."""
