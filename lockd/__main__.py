from lockd.cli import entry

entry()
