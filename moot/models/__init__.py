"""Model gateway and providers. See `moot.models.gateway` for the naming scheme."""
