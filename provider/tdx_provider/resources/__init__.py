"""The engine's resource controllers: check, diff, create, read, update, delete per resource."""
