from features.cli import app

app(prog_name="python -m features")
