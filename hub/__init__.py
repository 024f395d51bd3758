"""The regional hub: enrollment, directory, store-and-forward relay, statistics."""
