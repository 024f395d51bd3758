"""Statistics of the hub: periods, aggregation and the one disclosure control.

Pure modules (no I/O, no clock): the hub's storage and HTTP layers feed them
reports and render only what `disclosure.protect` returns.
"""
