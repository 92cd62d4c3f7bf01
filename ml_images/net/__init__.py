"""What the search calls and the downloads share about a connection: a deadline enforced on its sockets and a
body read under that deadline and a byte cap. Each caller turns the outcome into its own errors or reason codes."""
