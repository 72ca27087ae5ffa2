"""Live updates for the web pages: incident changes fanned out to Server-Sent Events streams."""
