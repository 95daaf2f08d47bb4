"""The serial bridge from microcontroller devices to collector events: not built yet."""
