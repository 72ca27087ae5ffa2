from backend.cli.main import app

app()
