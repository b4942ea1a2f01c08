"""What the three servers share without knowing each other: clock, timeline, /_sim clock API, HTTP out,
loopback server threads, JSON error handling and seeded ids."""
