"""One module per aggregate. Every function takes the session and the tenant explicitly."""
