"""What both HTTP faces (the API and the dashboard) take from a request: the runtime, a
session, the principal of a token, and the shape of the ids in a path.

The API (`trackd.api`) and the dashboard (`trackd.web`) sit side by side above this package
and never import each other; `trackd.app` puts them into one application.
"""
