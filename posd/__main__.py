from posd.cli.main import run

run()
