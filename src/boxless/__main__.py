from boxless.cli.main import app

app(prog_name="boxless")
