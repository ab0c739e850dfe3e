"""The technician CLI: `posd COMMAND ...`. Each submodule registers one command group."""
