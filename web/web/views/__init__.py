"""The pages, one module per area; each asks the gateway and renders what it answers."""
