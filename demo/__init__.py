"""The demo and the end-to-end harness: a hub and several offices on localhost.

Drives `mbe-hub` and `mbe-node` only through their command lines and HTTP APIs,
as an administrator and a counselling app would (docs/decisions.md, 5).
"""
