"""Web pages for people: the single-page UI and its static files."""
