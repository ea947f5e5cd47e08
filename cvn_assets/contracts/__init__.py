"""The agreed contracts (../shared/DESIGN.md): identifiers, object keys, blob schema, campaign spec."""
