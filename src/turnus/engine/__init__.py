"""The pure billing engine: data in, data out, no I/O, time passed in."""
